import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action, usageError } from '../exit.js';

interface UpFlags {
  config?: string;
  data?: string;
  listen?: string;
  port?: string;
  brokerPort?: string;
  watch: string[];
  firewall?: string;
  authLog: boolean;
}

function port(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535)
    throw usageError(`${flag}: "${text}" is not a port (0-65535)`);
  return Number(text);
}

export function register(program: Command): void {
  program
    .command('up')
    .description('Run hub and agent in one process on embedded defaults (what "npm start" runs)')
    .option('--config <file>', 'rampart.yaml (default /etc/rampart/rampart.yaml when it exists)')
    .option('--data <dir>', 'data folder (default: $RAMPART_DATA, /var/lib/rampart as root)')
    .option('--listen <addr>', 'address for the API and the broker (default 127.0.0.1; 0.0.0.0 for a fleet)')
    .option('--port <n>', 'API port (default 7780; 0 = any free port)')
    .option('--broker-port <n>', 'embedded MQTT broker port (default 7781; 0 = any free port)')
    .option(
      '--watch <path>',
      'also follow this log file with the rules (repeatable)',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--firewall <backend>', 'firewall backend (default: nftables as root with nft, else dry-run)')
    .option('--no-auth-log', 'do not read the local auth log / journald')
    .addHelpText(
      'after',
      '\nFirst start creates DATA/hub (key, admin token, SQLite) and enrols this machine as a node;\na second start resumes. Enrol another server with: rampart nodes add web2',
    )
    .action(
      action(async (o: UpFlags) => {
        const apiPort = port(o.port, '--port');
        const brokerPort = port(o.brokerPort, '--broker-port');
        const { runUp } = await import('../../agent/up.js');
        await runUp({ ...o, apiPort, brokerPort, dataDir: o.data, defaultDataDir: defaultDataDir() });
      }),
    );
}

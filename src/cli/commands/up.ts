import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action } from '../exit.js';
import { addServerOptions, checkFirewallFlag, parsePort, type ServerFlags } from '../server-options.js';

interface UpFlags extends ServerFlags {
  watch: string[];
  firewall?: string;
  authLog: boolean;
  fail2banJails?: string;
}

export function register(program: Command): void {
  addServerOptions(
    program
      .command('up')
      .description('Run hub and agent in one process on embedded defaults (what "npm start" runs)'),
    'API port (default 7780; 0 = any free port)',
  )
    .option(
      '--watch <path>',
      'also follow this log file with the rules (repeatable)',
      (v: string, a: string[]) => [...a, v],
      [],
    )
    .option('--firewall <backend>', 'firewall backend (default: nftables as root with nft, else dry-run)')
    .option(
      '--fail2ban-jails <dir>',
      'also run the enabled jails of this fail2ban configuration (e.g. /etc/fail2ban)',
    )
    .option('--no-auth-log', 'do not read the local auth log / journald')
    .addHelpText(
      'after',
      '\nFirst start creates DATA/hub (key, admin token, SQLite) and enrols this machine as a node;\na second start resumes. Enrol another server with: rampart nodes add web2',
    )
    .action(
      action(async (o: UpFlags) => {
        await checkFirewallFlag(o.firewall);
        const apiPort = parsePort(o.port, '--port');
        const brokerPort = parsePort(o.brokerPort, '--broker-port');
        const { runUp } = await import('../../agent/up.js');
        await runUp({ ...o, apiPort, brokerPort, dataDir: o.data, defaultDataDir: defaultDataDir() });
      }),
    );
}

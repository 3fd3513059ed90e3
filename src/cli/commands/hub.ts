import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action, usageError } from '../exit.js';

interface HubFlags {
  config?: string;
  data?: string;
  listen?: string;
  port?: string;
  brokerPort?: string;
  fleet?: string;
}

function port(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535)
    throw usageError(`${flag}: "${text}" is not a port (0-65535)`);
  return Number(text);
}

export function register(program: Command): void {
  program
    .command('hub')
    .description("Run the fleet's hub: decision log, policy, HTTP API and the embedded MQTT broker")
    .option('--config <file>', 'rampart.yaml (default /etc/rampart/rampart.yaml when it exists)')
    .option('--data <dir>', 'data folder (default: $RAMPART_DATA, /var/lib/rampart as root)')
    .option('--listen <addr>', 'address for the API and the broker (default 127.0.0.1; 0.0.0.0 for a fleet)')
    .option('--port <n>', 'API port (default 7780; 0 = any free port, written to DATA/hub/hub.json)')
    .option('--broker-port <n>', 'embedded MQTT broker port (default 7781; 0 = any free port)')
    .option('--fleet <name>', 'fleet name (topic prefix); default from the config, else "default"')
    .addHelpText(
      'after',
      '\nOn first start the hub creates DATA/hub/{hub.key,admin.token,hub.db}. The operator commands\n(rampart ban, list, nodes add, ...) on this machine then find it with no flags.',
    )
    .action(
      action(async (o: HubFlags) => {
        const apiPort = port(o.port, '--port');
        const brokerPort = port(o.brokerPort, '--broker-port');
        const { loadConfig } = await import('../../config/schema.js');
        const { hubStartOptions } = await import('../../hub/config.js');
        const { startHub } = await import('../../hub/hub.js');
        const { createLogger } = await import('../../core/logger.js');
        const cfg = loadConfig(o.config);
        const dataDir = o.data ?? cfg.data ?? defaultDataDir();
        const start = hubStartOptions(cfg, {
          dataDir,
          fleet: o.fleet,
          listen: o.listen,
          apiPort,
          brokerPort,
        });
        const log = createLogger({ stream: 'stdout', name: 'rampart-hub' });
        const hub = await startHub({ ...start, log });
        process.stderr.write(
          `rampart hub: API ${hub.url} (fleet "${hub.fleet}"), bus ${hub.busInfo.type} ${hub.busInfo.url}\n` +
            `  data: ${dataDir}/hub (admin token in admin.token)\n` +
            `  enrol a server: rampart nodes add web2${o.data ? ` --data ${o.data}` : ''}\n`,
        );
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        log.info('shutting down');
        await hub.close();
      }),
    );
}

import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action } from '../exit.js';
import { addServerOptions, parsePort, type ServerFlags } from '../server-options.js';

interface HubFlags extends ServerFlags {
  fleet?: string;
  store?: string;
  bus?: string;
}

export function register(program: Command): void {
  addServerOptions(
    program
      .command('hub')
      .description("Run the fleet's hub: decision log, policy, HTTP API and the embedded MQTT broker"),
    'API port (default 7780; 0 = any free port, written to DATA/hub/hub.json)',
  )
    .option('--fleet <name>', 'fleet name (topic prefix); default from the config, else "default"')
    .option(
      '--store <url>',
      'postgres://user@host/db: share one database between several hubs (default SQLite)',
    )
    .option(
      '--bus <url>',
      'external bus: mqtt://, nats:// or amqp:// URL, several comma-separated (default embedded)',
    )
    .addHelpText(
      'after',
      '\nOn first start the hub creates DATA/hub/{hub.key,admin.token,hub.db}. The operator commands\n(rampart ban, list, nodes add, ...) on this machine then find it with no flags.',
    )
    .action(
      action(async (o: HubFlags) => {
        const apiPort = parsePort(o.port, '--port');
        const brokerPort = parsePort(o.brokerPort, '--broker-port');
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
          store: o.store,
          bus: o.bus,
        });
        const log = createLogger({ stream: 'stdout', name: 'rampart-hub' });
        // The log's WAL is checkpointed off the thread that serves bans (ADR 0070).
        (await import('../../store/open-sqlite.js')).checkpointOffThread();
        const hub = await startHub({ ...start, log });
        // A vallumd fleet fed from (and feeding) this hub during a migration.
        const bridgeCfg = cfg.vallumd?.bridge;
        const bridge = bridgeCfg
          ? await (await import('../../compat/vallumd/bridge.js')).startVallumdBridge(hub, bridgeCfg, log)
          : undefined;
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
        await bridge?.close();
        await hub.close();
      }),
    );
}

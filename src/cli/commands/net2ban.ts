import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { action, EXIT, usageError } from '../exit.js';

const CTL_USAGE = `Commands available:
\tget_client client_name ------------> Get the config for the client client_name
\tupdate client_name /path/to/file --> Create/update the fail2ban actions file in all clients
\texec file action name=value ... ---> Run [Definition] action of actions/file.conf on every client
\tlist_clients ----------------------> List all client names
\tgen_random ------------------------> Generate a random string to be used as client key or shared secret`;

export function register(program: Command): void {
  program
    .command('net2ban')
    .description(
      'Run a net2ban server or client (as net2ban.cfg "mode" says), wire-compatible with the original',
    )
    .option('-c, --config <file>', 'net2ban.cfg', '/usr/share/net2ban/net2ban.cfg')
    .option('--actions <dir>', 'action files folder (default: actions/ beside the config)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics there')
    .option('--bridge <direction>', 'server: to-fleet | from-fleet | both, as the node enrolled in --data')
    .option(
      '--bridge-action <file>',
      'server, from-fleet: the action file clients run for fleet bans',
      'rampart',
    )
    .option('--data <dir>', 'the enrolled node folder for --bridge (default: the rampart data folder)')
    .action(
      action(
        async (o: {
          config: string;
          actions?: string;
          metrics?: string;
          bridge?: string;
          bridgeAction: string;
          data?: string;
        }) => {
          const { createLogger } = await import('../../core/logger.js');
          const { loadNet2banConfig } = await import('../../compat/net2ban/config.js');
          const { startServer, startClient } = await import('../../compat/net2ban/daemon.js');
          const { CompatMetrics, serveMetrics } = await import('../../compat/metrics.js');
          const { rootAbort, aborted } = await import('../../agent/lifecycle.js');
          const config = loadNet2banConfig(o.config);
          const log = createLogger({ name: `rampart-net2ban-${config.mode}` });
          const metrics = new CompatMetrics();
          const http = o.metrics ? await serveMetrics(o.metrics, metrics) : undefined;
          const { parseBridgeDirection, FleetBridge } = await import('../../compat/fleet-bridge.js');
          const { defaultDataDir } = await import('../../core/paths.js');
          const direction = parseBridgeDirection(o.bridge);
          if (direction && config.mode !== 'server') throw usageError('--bridge is for the server');
          const bridge = direction
            ? {
                fleet: FleetBridge.open(o.data ?? defaultDataDir(), 'net2ban', log, metrics),
                direction,
                actionFile: o.bridgeAction,
              }
            : undefined;
          const opts = {
            config,
            actionsDir: o.actions ?? join(dirname(config.file), 'actions'),
            log,
            metrics,
            bridge,
          };
          const running = config.mode === 'server' ? startServer(opts) : startClient(opts);
          log.info({ mode: config.mode, config: config.file }, 'net2ban started');
          const ac = rootAbort();
          await aborted(ac.signal);
          await running.close();
          http?.close();
        },
      ),
    );

  program
    .command('net2banctl')
    .description("net2ban's control tool: exec, update, gen_random, list_clients, get_client")
    .argument('<command>', 'exec | update | gen_random | list_clients | get_client')
    .argument('[args...]')
    .option('-c, --config <file>', 'net2ban.cfg', '/usr/share/net2ban/net2ban.cfg')
    .addHelpText('after', `\n${CTL_USAGE}`)
    .action(
      action(async (cmd: string, args: string[], o: { config: string }) => {
        const { loadNet2banConfig } = await import('../../compat/net2ban/config.js');
        const ctl = await import('../../compat/net2ban/ctl.js');
        const cfg = loadNet2banConfig(o.config);
        const out = (s: string): void => {
          process.stdout.write(s);
        };
        if (cmd === 'gen_random' && args.length === 0) return out(`${ctl.genRandom(cfg)}\n`);
        if (cmd === 'list_clients' && args.length === 0) {
          const names = ctl.listClients(cfg);
          if (names.length > 0) out(`${names.join('\n')}\n`);
          return;
        }
        if (cmd === 'get_client' && args.length === 1) {
          const text = ctl.getClient(cfg, args[0]!);
          if (text === undefined) {
            out(`Client not found: ${args[0]}\n`);
            process.exitCode = EXIT.FAILURE;
            return;
          }
          return out(text);
        }
        if (cmd === 'update' && args.length === 2)
          return ctl.sendToServer(cfg, ctl.updateCommand(args[0]!, args[1]!));
        if (cmd === 'exec' && args.length >= 2) {
          return ctl.sendToServer(cfg, ctl.execCommand(args[0]!, args[1]!, args.slice(2)));
        }
        throw usageError(`invalid parameters for "${cmd}"\n${CTL_USAGE}`);
      }),
    );
}

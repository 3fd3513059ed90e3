import type { Command } from 'commander';
import { action, usageError } from '../exit.js';

interface Flags {
  config?: string;
  hostname?: string;
  data?: string;
  metrics?: string;
  fromStart?: boolean;
  fail2banSocket?: string;
  firewall?: string;
  bridge?: string;
}

const ROLES = ['monitor', 'publisher', 'subscriber'] as const;

export function register(program: Command): void {
  program
    .command('f2b-zmq')
    .description(
      'Run a fail2ban-zmq-tools role (monitor, publisher or subscriber), wire-compatible with the original',
    )
    .argument('<role>', 'monitor | publisher | subscriber')
    .option(
      '-c, --config <file>',
      'fail2ban-cluster.conf (default: ./fail2ban-cluster.conf, then /etc/fail2ban-cluster.conf)',
    )
    .option('--hostname <name>', 'name sent by the monitor / ignored by the subscriber (default: this host)')
    .option('--data <dir>', 'state folder (the monitor keeps its spool and log position in DATA/f2b-zmq)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics there')
    .option('--from-start', 'monitor: read an existing fail2ban.log from its start, not its end')
    .option('--fail2ban-socket <path>', 'subscriber with subscriberaction = fail2banclient: fail2ban socket')
    .option(
      '--firewall <backend>',
      'subscriber with subscriberaction = firewall: the backend (nftables, ipset, ...)',
    )
    .addHelpText(
      'after',
      '\nThe monitor keeps what the publisher did not answer and resends it; the publisher answers the\n' +
        "original's frames and NAKs; see docs/compat/fail2ban-zmq-tools.md. Runs in the foreground.",
    )
    .action(
      action(async (role: string, o: Flags) => {
        if (!(ROLES as readonly string[]).includes(role))
          throw usageError(`unknown role "${role}": ${ROLES.join(', ')}`);
        const { createLogger } = await import('../../core/logger.js');
        const { runCluster } = await import('../../compat/fail2ban-zmq-tools/run.js');
        const { rootAbort, aborted } = await import('../../agent/lifecycle.js');
        const { parseBridgeDirection } = await import('../../compat/fleet-bridge.js');
        const bridge = parseBridgeDirection(o.bridge);
        if (bridge && role !== 'publisher') throw usageError('--bridge is for the publisher');
        const log = createLogger({ name: `rampart-f2b-${role}` });
        // Taken before start-up: a SIGTERM right after "listening" must stop it cleanly too.
        const ac = rootAbort();
        const running = await runCluster({
          role: role as (typeof ROLES)[number],
          config: o.config,
          hostname: o.hostname,
          dataDir: o.data,
          metrics: o.metrics,
          fromStart: o.fromStart,
          fail2banSocket: o.fail2banSocket,
          bridge,
          firewall: async () => {
            const { createFirewall } = await import('../../firewall/create.js');
            return createFirewall({ backend: o.firewall ?? 'auto' }, { logger: log });
          },
          log,
        });
        await aborted(ac.signal);
        log.info('shutting down');
        await running.close();
      }),
    );
}

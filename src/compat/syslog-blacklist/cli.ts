import type { Command } from 'commander';
import { action, usageError } from '../../cli/exit.js';
import { parseHostPort } from '../../core/host-port.js';

export function register(program: Command): void {
  program
    .command('syslog-blacklist')
    .description(
      'Drop-in for syslog-blacklist: ban in the blacklist ipset on syslog lines matching [name] TIME sections',
    )
    .option('--listen <host:port>', 'UDP syslog listener', '127.0.0.1:2222')
    .option('--blacklist <set>', 'ipset to fill (IPv6 bans go to SET-v6)', 'blacklist')
    .option('--blocked <duration>', 'ban length of a section without a time', '1h')
    .option('--config <file>', 'the sections file', '/etc/syslog-blacklist.conf')
    .option('--pidfile <file>', 'write the pid here (removed at exit)')
    .option('--no-daemon', 'accepted for compatibility: rampart always runs in the foreground')
    .option('--debug', 'log every line received')
    .option('--firewall <backend>', 'ipset (default) or nftables', 'ipset')
    .addHelpText(
      'after',
      '\nThe whitelist and blackout ipsets are never written, and an address in whitelist is never\nbanned. SIGHUP re-reads --config. Logs "blacklisting IP for SECTION" for every ban.',
    )
    .action(
      action(
        async (o: {
          listen: string;
          blacklist: string;
          blocked: string;
          config: string;
          pidfile?: string;
          debug?: boolean;
          firewall: string;
        }) => {
          const listen = parseHostPort(o.listen, '--listen');
          if (o.firewall !== 'ipset' && o.firewall !== 'nftables')
            throw usageError(`--firewall: "${o.firewall}" is not ipset or nftables`);
          const [{ parseDuration }, { SyslogBlacklistDaemon }, { rootAbort, aborted }, { createLogger }] =
            await Promise.all([
              import('../../core/duration.js'),
              import('./daemon.js'),
              import('../../agent/lifecycle.js'),
              import('../../core/logger.js'),
            ]);
          const blocked = parseDuration(o.blocked, '--blocked');
          const log = createLogger({
            stream: 'stdout',
            name: 'syslog-blacklist',
            ...(o.debug ? { level: 'debug' } : {}),
          });
          const daemon = new SyslogBlacklistDaemon({
            listen,
            set: o.blacklist,
            blocked,
            config: o.config,
            backend: o.firewall,
            logger: log,
            ...(o.pidfile ? { pidfile: o.pidfile } : {}),
          });
          const ac = rootAbort();
          await daemon.start();
          const hup = () => daemon.reload();
          process.on('SIGHUP', hup);
          await aborted(ac.signal);
          process.off('SIGHUP', hup);
          await daemon.close();
        },
      ),
    );
  program
    .command('syslog-inject')
    .description('Send each line of stdin as a syslog message (feeds syslog-blacklist from any log)')
    .option('--server <host:port>', 'where the listener is', '127.0.0.1:2222')
    .option('--tag <tag>', 'program name in the message', 'syslog-inject')
    .option('--priority <facility.severity>', 'syslog priority', 'user.notice')
    .addHelpText(
      'after',
      '\nExample:\n  tail -F /var/log/apache2/error.log | rampart syslog-inject --tag apache',
    )
    .action(
      action(async (o: { server: string; tag: string; priority: string }) => {
        const { inject, priority } = await import('./inject.js');
        const server = parseHostPort(o.server, '--server');
        const pri = priority(o.priority);
        if (pri === undefined)
          throw usageError(`--priority: "${o.priority}" is not FACILITY.SEVERITY (e.g. user.notice)`);
        if (!/^[\x21-\x7e]{1,48}$/.test(o.tag))
          throw usageError('--tag: 1 to 48 printable characters without spaces');
        await inject(process.stdin, { ...server, pri, tag: o.tag });
      }),
    );
}

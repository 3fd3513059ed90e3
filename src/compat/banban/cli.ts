import type { Command } from 'commander';
import { action } from '../../cli/exit.js';

/** `rampart banban [-f] [-s] [--config /etc/banban.yml]`, parsed as banban's getopts does. */
export function register(program: Command): void {
  program.enablePositionalOptions();
  program
    .command('banban')
    .description('Drop-in for banban: syslog lines on a UNIX datagram socket → xt_recent blocks')
    .usage('[-f] [-s] [--config /etc/banban.yml]')
    .helpOption(false)
    .passThroughOptions()
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(action(async () => run(process.argv.slice(process.argv.indexOf('banban', 2) + 1))));
}

async function run(argv: string[]): Promise<void> {
  const { parseBanbanArgs } = await import('./args.js');
  const parsed = parseBanbanArgs(argv);
  if (parsed.kind === 'exit') {
    process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  const [{ BanbanDaemon }, { rootAbort, aborted }, { createLogger }] = await Promise.all([
    import('./daemon.js'),
    import('../../agent/lifecycle.js'),
    import('../../core/logger.js'),
  ]);
  // -f is banban's "foreground and debug info": rampart never forks (systemd runs it), so -f
  // only raises the log level to show every line checked.
  const log = createLogger({
    stream: 'stdout',
    name: 'banban',
    ...(parsed.flags.foreground ? { level: 'debug' } : {}),
  });
  const daemon = new BanbanDaemon({
    config: parsed.flags.config,
    simulate: parsed.flags.simulate,
    logger: log,
  });
  const ac = rootAbort();
  await daemon.start();
  const hup = () => {
    log.info('reloading config');
    daemon.reload();
  };
  process.on('SIGHUP', hup);
  await aborted(ac.signal);
  process.off('SIGHUP', hup);
  await daemon.close();
}

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { action } from '../../cli/exit.js';

/**
 * `rampart vallumd`: takes vallumd's own command line untouched (commander would read `-h` and
 * `-V` as help and version), so the options are passed through and parsed by args.ts.
 */
export function register(program: Command): void {
  // Root options only before the command name, so `-V`/`-h` after it reach vallumd's parser.
  program.enablePositionalOptions();
  program
    .command('vallumd')
    .description('Drop-in for vallumd: apply MQTT ban messages (SET/add, SET/del) to ipset or nftables')
    .usage(
      '-h host [-p port] [-u username] [-P password] -t topic1 [-t topicN] [-T -c cafile] [--config FILE]',
    )
    .helpOption(false)
    .passThroughOptions()
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    // The raw words after the command name: commander drops a `--`, which getopt must see.
    .action(action(async () => run(process.argv.slice(process.argv.indexOf('vallumd', 2) + 1))));
}

async function run(argv: string[]): Promise<void> {
  const [{ parseVallumdArgs, splitConfigOption, VALLUMD_USAGE }, { resolveOptions }, { loadConfig }] =
    await Promise.all([import('./args.js'), import('./config.js'), import('../../config/schema.js')]);
  const split = splitConfigOption(argv);
  if (split.error) {
    process.stderr.write(`rampart vallumd: ${split.error}\n`);
    process.stdout.write(VALLUMD_USAGE);
    process.exitCode = 1;
    return;
  }
  const section = split.config !== undefined ? (loadConfig(split.config).vallumd ?? {}) : {};
  const { readVersion } = await import('../../agent/build.js');
  const parsed = parseVallumdArgs(split.rest, {
    version: readVersion(),
    exists: existsSync,
    configDefaults: section,
  });
  if (parsed.kind === 'exit') {
    process.stdout.write(parsed.stdout);
    process.stderr.write(parsed.stderr);
    process.exitCode = parsed.code;
    return;
  }
  const [{ VallumdDaemon }, { rootAbort, aborted }, { createLogger }] = await Promise.all([
    import('./daemon.js'),
    import('../../agent/lifecycle.js'),
    import('../../core/logger.js'),
  ]);
  const log = createLogger({ stream: 'stdout', name: 'vallumd' });
  const daemon = new VallumdDaemon(resolveOptions(parsed.flags, section), { logger: log });
  const ac = rootAbort();
  await daemon.start();
  log.info('vallumd running');
  await aborted(ac.signal);
  await daemon.close();
  log.info('vallumd stopped');
}

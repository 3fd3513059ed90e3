#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { commands } from './commands.js';
import { EXIT, reportError } from './exit.js';
import { addLogOptions } from './log-options.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function main(argv: string[]): Promise<void> {
  const program = new Command('rampart')
    .description(
      'Share IP ban decisions across a fleet: detect in logs, decide on a hub, drop in every kernel.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const load of commands) (await load()).register(program);
  addLogOptions(program);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; anything else commander refused is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    process.exitCode = reportError(err);
  }
}

await main(process.argv);

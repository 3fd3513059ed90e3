import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { commands } from './commands.js';
import { addLogOptions } from './log-options.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The whole command tree, for main() and for what reads it (completion, its tests). */
export async function buildProgram(): Promise<Command> {
  const program = new Command('rampart')
    .description(
      'Share IP ban decisions across a fleet: detect in logs, decide on a hub, drop in every kernel.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const load of commands) (await load()).register(program);
  addLogOptions(program);
  return program;
}

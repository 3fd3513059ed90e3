import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Command as CommandClass } from 'commander';
import { commands } from './commands.js';
import { addLogOptions } from './log-options.js';

// CommonJS loaded with require, not import (ADR 0056).
const { Command } = createRequire(import.meta.url)('commander') as { Command: typeof CommandClass };

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/**
 * The whole command tree, for main() and for what reads it (completion, its tests). With
 * `only` naming a command, just that command's file is loaded: `rampart check` then starts
 * without the twenty others (≈ 6 MB of resident memory and their load time). Anything else
 * (an option first, an unknown word, no command) loads them all, so help and errors are whole.
 */
export async function buildProgram(only?: string): Promise<CommandClass> {
  const program = new Command('rampart')
    .description(
      'Share IP ban decisions across a fleet: detect in logs, decide on a hub, drop in every kernel.',
    )
    .version(pkg.version, '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const one = commands.find((c) => only !== undefined && c.names.includes(only) && !c.needsTree);
  for (const c of one ? [one] : commands) (await c.load()).register(program);
  addLogOptions(program);
  return program;
}

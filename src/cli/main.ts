#!/usr/bin/env -S node --max-semi-space-size=4
import { createRequire } from 'node:module';
import { EXIT, reportError } from './exit.js';

/** The commands that run for good and take the fleet's decisions. */
const LONG_RUNNING = new Set(['agent', 'hub', 'up']);

async function main(argv: string[]): Promise<void> {
  // Everything rampart writes (databases and their WAL files, state, position files) says who
  // the fleet bans and trusts: owner only. Output redirected by the shell is not affected.
  process.umask(0o077);
  if (LONG_RUNNING.has(argv[2] ?? '')) {
    const tiering = await import('../core/startup-tiering.js');
    // Compiled function by function (ADR 0057).
    tiering.compileWithoutInlining();
    // The agent loads its modules without TurboFan; commands/agent.ts releases it (ADR 0047).
    if (argv[2] === 'agent') tiering.holdForStartup();
  }
  // A plain `rampart check` runs without loading commander (commands/check-args.ts).
  if (
    argv[2] === 'check' &&
    (await (await import('./commands/check-args.js')).runPlainCheck(argv.slice(3)))
  ) {
    return;
  }
  // A plain `rampart agent` runs without loading commander (commands/agent-args.ts).
  if (
    argv[2] === 'agent' &&
    (await (await import('./commands/agent-args.js')).runPlainAgent(argv.slice(3)))
  ) {
    return;
  }
  // CommonJS loaded with require, not import (ADR 0056).
  const { CommanderError } = createRequire(import.meta.url)('commander') as typeof import('commander');
  const { buildProgram } = await import('./program.js');
  const program = await buildProgram(argv[2]);
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

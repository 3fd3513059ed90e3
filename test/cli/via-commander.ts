import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';

/**
 * What commander hands the action of `rampart <command>` for these words after the command name:
 * its arguments, its options, and the command (for options read on the program).
 */
export async function viaCommander(
  command: string,
  args: string[],
): Promise<{ values: unknown[]; command: Command }> {
  const program = await buildProgram(command);
  let got: { values: unknown[]; command: Command } | undefined;
  program.commands[0]!.action((...a: unknown[]) => {
    got = { values: a.slice(0, -1), command: a[a.length - 1] as Command };
  });
  await program.parseAsync(['node', 'rampart', command, ...args]);
  if (got === undefined) throw new Error('the action did not run');
  return got;
}

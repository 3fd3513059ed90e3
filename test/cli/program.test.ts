import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands.js';
import { buildProgram } from '../../src/cli/program.js';

describe('the command list', () => {
  it('names exactly the commands each file registers, so `rampart <name>` can load that file alone', async () => {
    for (const c of commands) {
      const program = new Command('rampart');
      (await c.load()).register(program);
      expect(program.commands.map((x) => x.name())).toEqual(c.names);
    }
  });

  it('builds one command for its name and the whole tree otherwise', async () => {
    const all = (await buildProgram()).commands.map((x) => x.name());
    expect(all).toEqual(commands.flatMap((c) => c.names));
    expect((await buildProgram('check')).commands.map((x) => x.name())).toEqual(['check']);
    expect((await buildProgram('--log-level')).commands.map((x) => x.name())).toEqual(all);
    // completion prints the whole tree, so it never loads alone.
    expect((await buildProgram('completion')).commands.map((x) => x.name())).toEqual(all);
  });
});

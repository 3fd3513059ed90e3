import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/program.js';
import { bashCompletion, commandTree, zshCompletion } from '../../src/ops/completion.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('bash completion', ['cmd:bash']);

describe('shell completion generated from the command tree', () => {
  let program: Command;
  let dir: string;
  let script: string;
  beforeAll(async () => {
    program = await buildProgram();
    dir = mkdtempSync(join(tmpdir(), 'rampart-completion-'));
    script = join(dir, 'rampart.bash');
    writeFileSync(script, bashCompletion(program));
    writeFileSync(join(dir, 'bans.txt'), '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** What bash offers for the words typed so far (the last one is being completed). */
  const complete = (...words: string[]) => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _rampart; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        script,
        'rampart',
        ...words,
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    return r.stdout.split('\n').filter(Boolean).sort();
  };

  it('every command and subcommand of the program is in both scripts', () => {
    const nodes = commandTree(program);
    const paths = nodes.map((n) => n.path);
    for (const name of ['firewall add', 'config check', 'completion', 'allow list', 'f2b-zmq'])
      expect(paths).toContain(name);
    const zsh = zshCompletion(program);
    const bash = bashCompletion(program);
    for (const n of nodes) {
      expect(bash).toContain(`'${n.path}')`);
      expect(zsh).toContain(`'${n.path}')`);
    }
  });

  it.skipIf(req.skip)('bash completes commands, subcommands, options, choices and file arguments', () => {
    expect(complete('fi')).toEqual(['firewall']);
    expect(complete('firewall', 'a')).toEqual(['add']);
    expect(complete('firewall', 'add', '--backend', 'dry-run', '--f')).toEqual(['--for', '--from-file']);
    expect(complete('firewall', 'add', '--from-file', 'ba')).toEqual(['bans.txt']);
    // A global option's value is skipped, not taken for a command name.
    expect(complete('--log-level', 'debug', 'con')).toEqual(['config']);
    expect(complete('config', 'check', '--j')).toEqual(['--json']);
    expect(complete('completion', '')).toEqual(['bash', 'zsh']);
    expect(complete('f2b-zmq', 'p')).toEqual(['publisher']);
    expect(complete('ban', '--for', '')).toEqual([]);
  });

  it.skipIf(req.skip)('the generated bash script passes bash -n', () => {
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
  });

  const zshReq = requirements('zsh completion syntax', ['cmd:zsh']);
  it.skipIf(zshReq.skip)('the generated zsh script passes zsh -n', () => {
    const file = join(dir, '_rampart');
    writeFileSync(file, zshCompletion(program));
    expect(spawnSync('zsh', ['-n', file]).status).toBe(0);
  });
});

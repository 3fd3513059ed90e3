import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasNodeFlags, NODE_FLAGS, nodeArgs } from '../../src/cli/node-flags.js';
import { MAIN } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-node-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("rampart's processes start with NODE_FLAGS", () => {
  it('the command’s first line passes them to node', () => {
    const first = readFileSync(MAIN, 'utf8').split('\n', 1)[0];
    expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  });

  it('npm start passes them', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } };
    expect(pkg.scripts.start).toBe(`node ${NODE_FLAGS.join(' ')} dist/cli/main.js up`);
  });

  it('started through its first line (as the systemd units do), node has them', () => {
    // packaging/install.sh makes the command executable; so does this test.
    if ((statSync(MAIN).mode & 0o111) === 0) chmodSync(MAIN, 0o755);
    const probe = join(dir, 'exec-argv.cjs');
    writeFileSync(probe, "process.stderr.write('execArgv=' + JSON.stringify(process.execArgv) + '\\n');\n");
    const r = spawnSync(MAIN, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${probe}` },
    });
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(/execArgv=(.*)/.exec(r.stderr)?.[1] ?? 'null') as string[];
    expect(hasNodeFlags(seen)).toBe(true);
  });

  it('nodeArgs puts them before the script, hasNodeFlags needs every one', () => {
    expect(nodeArgs('x.js', 'a')).toEqual([...NODE_FLAGS, 'x.js', 'a']);
    expect(hasNodeFlags([])).toBe(false);
    expect(hasNodeFlags(['--inspect', ...NODE_FLAGS])).toBe(true);
  });
});

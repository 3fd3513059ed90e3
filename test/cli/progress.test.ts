import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressBar } from '../../src/ops/progress.js';
import { childOutput } from '../helpers/child-output.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';
import { MAIN } from './run-cli.js';

describe('progress bar', () => {
  const fake = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, stream: { isTTY, columns: 100, write: (t: string) => out.push(t) } };
  };

  it('on a terminal: percentage, count, rate and time left, redrawn at most every 100 ms', () => {
    const { out, stream } = fake(true);
    let t = 0;
    const bar = progressBar('import', 1000, { stream, now: () => t });
    t = 1000;
    bar.update(250);
    bar.update(260); // same instant: not redrawn
    t = 2000;
    bar.update(500);
    bar.finish();
    expect(out).toHaveLength(4);
    expect(out[0]).toMatch(/^\rimport \[#{10}\.{30}\] {2}25% 250\/1000 250\/s ETA 3s\x1b\[K$/);
    expect(out[1]).toMatch(/ 50% 500\/1000 250\/s ETA 2s/);
    expect(out[2]).toMatch(/100% 1000\/1000 500\/s ETA 0s/);
    expect(out[3]).toBe('\n');
  });

  it('on a pipe, or for a short list, nothing at all', () => {
    const pipe = fake(false);
    const bar = progressBar('export', 10_000, { stream: pipe.stream });
    bar.update(5000);
    bar.finish();
    expect(pipe.out).toEqual([]);
    const small = fake(true);
    progressBar('import', 10, { stream: small.stream, minTotal: 1000 }).finish();
    expect(small.out).toEqual([]);
  });
});

const req = requirements('progress on import/export', ['cmd:script', `file:${MAIN}`]);

describe.skipIf(req.skip)('rampart import / export progress (real hub)', () => {
  let t: TestHub;
  let dir: string;
  beforeAll(async () => {
    t = await startTestHub();
    dir = mkdtempSync(join(tmpdir(), 'rampart-progress-'));
    // 2,250 bans, documentation addresses only: the three TEST-NETs and 2001:db8::/32.
    const lines: string[] = [];
    for (const net of ['192.0.2', '198.51.100', '203.0.113'])
      for (let i = 1; i <= 250; i++) lines.push(`${net}.${i} 1h bulk`);
    for (let i = 1; i <= 1500; i++) lines.push(`2001:db8::${i.toString(16)} 1h bulk`);
    writeFileSync(join(dir, 'bans.txt'), `${lines.join('\n')}\n`);
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const sh = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  /** Runs a shell command line; with `tty`, under a pseudo-terminal (util-linux script). */
  const run = (line: string, tty: boolean) =>
    childOutput(tty ? spawn('script', ['-qec', line, '/dev/null']) : spawn('sh', ['-c', line]));
  const cli = (args: string) =>
    `${sh(process.execPath)} ${sh(MAIN)} ${args} --hub ${sh(t.hub.url)} --token ${sh(t.hub.adminToken)}`;

  it('import shows a bar with rate and ETA on a terminal, and none on a pipe', async () => {
    const onTty = await run(cli(`import ${sh(join(dir, 'bans.txt'))}`), true);
    expect(onTty.code).toBe(0);
    expect(onTty.out).toMatch(/\rimport \[#+\] 100% 2250\/2250 \S+\/s ETA 0s/);
    expect(onTty.out).toMatch(/imported 2250 bans/);
    const piped = await run(`${cli(`import ${sh(join(dir, 'bans.txt'))}`)} 2>&1`, false);
    expect(piped.code).toBe(0);
    expect(piped.out).toBe('imported 0 bans (2250 already in force, 0 bad lines)\n');
  });

  it('export draws on the terminal stderr while stdout to a file stays clean', async () => {
    const file = join(dir, 'out.txt');
    const r = await run(`${cli('export')} > ${sh(file)}`, true);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/\rexport \[#+\] 100% 2250\/2250/);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('\r');
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toHaveLength(2250);
  });
});

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { requirements } from '../helpers/requirements.js';

const BUILT = resolve('dist/store/sqlite.js');
const req = requirements('store crash safety', [`file:${BUILT}`]);
const dir = mkdtempSync(join(tmpdir(), 'rampart-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two writer processes append as fast as they can; one is killed with SIGKILL mid-stream.
const writer = (file: string, tag: number) => `
  const { SqliteStore } = await import(${JSON.stringify(BUILT)});
  const s = new SqliteStore(${JSON.stringify(file)});
  process.stdout.write('ready\\n');
  for (let i = 0; ; i++) {
    const now = Date.now();
    await s.append(Array.from({ length: 1 + (i % 5) }, (_, j) => ({
      action: 'ban', target: '10.${tag}.' + ((i >> 8) & 255) + '.' + (i & 255), family: 4, duration: 60,
      expiresAt: now + 60000, reason: 'crash test', rule: 'r', origin: 'w${tag}', createdAt: now, set: 'blocklist',
    })));
  }
`;

describe.skipIf(req.skip)('sqlite store under crash', () => {
  it('two processes writing, one killed with SIGKILL: the log has no gaps and head is its last seq', async () => {
    const file = join(dir, 'crash.db');
    new SqliteStore(file).close();
    const procs = [1, 2].map((tag) =>
      spawn(process.execPath, ['--input-type=module', '-e', writer(file, tag)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    await Promise.all(procs.map((p) => new Promise((r) => p.stdout!.once('data', r))));
    await new Promise((r) => setTimeout(r, 700));
    const exits = procs.map((p) => new Promise((r) => p.once('exit', r)));
    procs[0]!.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    procs[1]!.kill('SIGKILL');
    await Promise.all(exits);

    const s = new SqliteStore(file);
    try {
      const head = await s.head();
      const all = await s.since(0, 1_000_000);
      expect(head).toBeGreaterThan(10);
      expect(all.map((d) => d.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
      expect(new Set(all.map((d) => d.origin))).toEqual(new Set(['w1', 'w2']));
      const [next] = await s.append([{ ...all[0]!, id: undefined, target: '192.0.2.1' }]);
      expect(next!.seq).toBe(head + 1);
    } finally {
      await s.close();
    }
  }, 20_000);
});

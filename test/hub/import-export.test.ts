import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { childOutput } from '../helpers/child-output.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from './helpers.js';

const MAIN = resolve('dist/cli/main.js');
const req = requirements('import/export CLI', [`file:${MAIN}`]);

describe.skipIf(req.skip)('rampart import / export (node dist/cli/main.js against a real hub)', () => {
  let t: TestHub;
  let dir: string;
  // Asynchronous: the hub answers from this same process.
  const run = (args: string[], input?: string) => {
    const child = spawn(process.execPath, [MAIN, ...args, '--hub', t.hub.url, '--token', t.hub.adminToken], {
      env: { ...process.env, RAMPART_HUB: '', RAMPART_TOKEN: '', RAMPART_DATA: dir },
      timeout: 30_000,
    });
    child.stdin.end(input ?? '');
    return childOutput(child);
  };

  beforeAll(async () => {
    t = await startTestHub();
    dir = mkdtempSync(join(tmpdir(), 'rampart-import-'));
    await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.200' });
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('imports the good lines, names every bad one by line number, and exits 2', async () => {
    const file = join(dir, 'bans.txt');
    writeFileSync(
      file,
      [
        '# feed of 2026-11-21',
        '192.0.2.1 12h web scanner',
        '',
        '2001:db8::/64 permanent',
        'nonsense 1h',
        '192.0.2.2 3q typo in duration',
        '192.0.2.200 1h allowlisted by the hub',
        '192.0.2.3',
        '\u001b[31m 1h hostile bytes',
        '192.0.2.1 12h listed twice',
      ].join('\n'),
    );
    const r = await run(['import', file]);
    expect(r.code, r.err).toBe(2);
    expect(r.out).toBe('imported 3 bans (1 already in force, 4 bad lines)\n');
    const errs = r.err.trim().split('\n');
    expect(errs.map((l) => l.split(':').slice(0, 2).join(':'))).toEqual(
      [5, 6, 7, 9].map((n) => `${file}:${n}`),
    );
    expect(errs[2]).toMatch(/allowlisted/);
    expect(r.err).not.toContain('\u001b');
    const active = (await t.call('GET', '/v1/decisions/active')).json.decisions as Decision[];
    expect(active.map((d) => [d.target, d.duration, d.reason]).sort()).toEqual(
      [
        ['192.0.2.1', 43200, 'web scanner'],
        ['192.0.2.3', 3600, 'manual ban'],
        ['2001:db8::/64', null, 'manual ban'],
      ].sort(),
    );
  });

  it('rampart ban with several targets bans them in one bulk request', async () => {
    const r = await run(['ban', '198.51.100.20', '198.51.100.21', 'nonsense', '--for', '1h']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('banned 2 (0 already in force, 1 refused)\n');
    expect(r.err).toMatch(/nonsense/);
    const active = (await t.call('GET', '/v1/decisions/active')).json.decisions as Decision[];
    const seqs = active.filter((d) => d.target.startsWith('198.51.100.2')).map((d) => d.seq);
    expect(seqs).toHaveLength(2);
    expect(seqs[1]! - seqs[0]!).toBe(1);
    await t.call('DELETE', '/v1/decisions/198.51.100.20');
    await t.call('DELETE', '/v1/decisions/198.51.100.21');
  });

  it('export prints what import reads: a round trip into a second hub gives the same bans', async () => {
    const exported = await run(['export']);
    expect(exported.code, exported.err).toBe(0);
    const lines = exported.out.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toHaveLength(3);
    expect(lines).toContain('2001:db8::/64 permanent manual ban');

    const first = t;
    const second = await startTestHub();
    try {
      t = second;
      const r = await run(['import', '-'], exported.out);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toBe('imported 3 bans (0 already in force, 0 bad lines)\n');
      const a = (await first.call('GET', '/v1/decisions/active')).json.decisions as Decision[];
      const b = (await second.call('GET', '/v1/decisions/active')).json.decisions as Decision[];
      const byTarget = (ds: Decision[]) => new Map(ds.map((d) => [d.target, d]));
      const before = byTarget(a);
      const after = byTarget(b);
      expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
      for (const [target, d] of after) {
        const old = before.get(target)!;
        expect(d.reason).toBe(old.reason);
        // Export rounds the remaining time up to a second; the import ran a moment later.
        if (old.expiresAt === null) expect(d.expiresAt).toBeNull();
        else expect(Math.abs(d.expiresAt! - old.expiresAt)).toBeLessThan(5000);
      }
      // Importing the same list again changes nothing.
      expect((await run(['import', '-'], exported.out)).out).toBe(
        'imported 0 bans (3 already in force, 0 bad lines)\n',
      );

      const json = await run(['export', '--json']);
      expect(JSON.parse(json.out).decisions).toHaveLength(3);
      const blocklist = await run(
        ['import', '-', '--format', 'blocklist', '--for', '1h'],
        '198.51.100.7\n198.51.100.8 # comment\n198.51.100.9 extra\n',
      );
      expect(blocklist.code).toBe(2);
      expect(blocklist.err).toMatch(/^stdin:3: expected one address per line/);
      expect(blocklist.out).toMatch(/^imported 2 bans/);
    } finally {
      t = first;
      await second.close();
    }
  });
});

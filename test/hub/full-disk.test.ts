import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hub, startHub } from '../../src/hub/hub.js';
import { openSqlite } from '../../src/store/open-sqlite.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('hub on a full disk', ['root', 'cmd:mount', 'cmd:umount']);

/** Fills the file system holding `dir` until ENOSPC. */
function fill(dir: string): void {
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
      throw err;
    }
  }
  // The last partial chunks: byte by byte is too slow, so halve down to nothing left.
  for (let size = 32 * 1024, i = 0; size >= 1; size >>= 1) {
    try {
      writeFileSync(join(dir, `tail-${size}-${i++}`), Buffer.alloc(size));
      size <<= 1;
    } catch {}
  }
}

describe.skipIf(req.skip)('hub restart on a full disk', () => {
  let mnt: string;
  let hub: Hub | undefined;
  beforeAll(() => {
    mnt = mkdtempSync(join(tmpdir(), 'rampart-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', mnt]);
  });
  afterAll(async () => {
    await hub?.close().catch(() => undefined);
    try {
      execFileSync('umount', [mnt]);
    } catch (err) {
      console.log(`umount ${mnt}: ${(err as Error).message}`);
      execFileSync('umount', ['-l', mnt]);
    }
    rmSync(mnt, { recursive: true, force: true });
  });

  it('restarts and serves its log when nothing needs writing (the admin token exists)', async () => {
    const dataDir = join(mnt, 'data');
    const opts = { dataDir, apiPort: 0, brokerPort: 0, sweepIntervalMs: 3_600_000 };
    hub = await startHub(opts);
    const d = await hub.core.ban({ target: '192.0.2.70', duration: 3600 });
    await hub.close();
    hub = undefined;
    fill(mnt);
    expect(() => writeFileSync(join(mnt, 'probe'), 'x')).toThrow(/ENOSPC/);
    // Before the fix: "cannot write admin token ...: ENOSPC" (a temp file written before looking).
    hub = await startHub(opts);
    const res = await fetch(new URL('/v1/decisions?since=0', hub.url), {
      headers: { authorization: `Bearer ${hub.adminToken}` },
    });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { head: number; decisions: Array<{ target: string }> };
    expect(page.head).toBe(d.seq);
    expect(page.decisions.map((x) => x.target)).toContain('192.0.2.70');
  });

  it('fills up while running: a clear error, reads still served, resumes when space returns, nothing lost or corrupted', async () => {
    const freeUp = () => {
      for (const f of readdirSync(mnt)) if (/^(filler|tail)-/.test(f)) rmSync(join(mnt, f));
    };
    freeUp();
    const dataDir = join(mnt, 'data2');
    const opts = { dataDir, apiPort: 0, brokerPort: 0, sweepIntervalMs: 3_600_000 };
    hub = await startHub(opts);
    const api = (method: string, path: string, body?: unknown) =>
      fetch(new URL(path, hub!.url), {
        method,
        headers: {
          authorization: `Bearer ${hub!.adminToken}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
    const acked: string[] = [];
    for (let i = 1; i <= 20; i++) {
      const r = await api('POST', '/v1/decisions', { target: `198.51.100.${i}`, duration: '1h' });
      expect(r.status).toBe(201);
      acked.push(`198.51.100.${i}`);
    }
    fill(mnt);
    // Bans until one is refused for the disk (SQLite may still fit a few into free pages).
    let refused: { status: number; body: { error?: string; code?: string } } | undefined;
    for (let i = 1; i <= 2000 && !refused; i++) {
      const r = await api('POST', '/v1/decisions', { target: `203.0.113.${i % 250}/32`, duration: `${i}h` });
      const body = (await r.json()) as { error?: string; code?: string };
      if (r.status === 201) acked.push(`203.0.113.${i % 250}`);
      else refused = { status: r.status, body };
    }
    expect(refused, 'the disk never filled').toBeDefined();
    expect(refused!.status).toBeGreaterThanOrEqual(500);
    expect(JSON.stringify(refused!.body)).toMatch(/disk|full|space|SQLITE_FULL/i);
    expect(JSON.stringify(refused!.body).length).toBeLessThan(1_000);
    const read = await api('GET', '/v1/decisions?since=0');
    expect(read.status).toBe(200);
    // Space comes back: the next ban goes through without a restart.
    freeUp();
    const again = await api('POST', '/v1/decisions', { target: '192.0.2.99', duration: '1h' });
    expect(again.status).toBe(201);
    acked.push('192.0.2.99');
    await hub.close();
    hub = undefined;
    const db = openSqlite(join(dataDir, 'hub', 'hub.db'));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
    hub = await startHub(opts);
    const page = (await (await api('GET', '/v1/decisions?since=0')).json()) as {
      head: number;
      decisions: Array<{ seq: number; target: string }>;
    };
    expect(page.decisions.map((d) => d.seq)).toEqual(Array.from({ length: page.head }, (_, k) => k + 1));
    const logged = new Set(page.decisions.map((d) => d.target));
    expect(acked.filter((t) => !logged.has(t))).toEqual([]);
    console.log(
      `full disk: ${acked.length} acknowledged bans kept, refused with ${refused!.status} ${JSON.stringify(refused!.body)}`,
    );
  });
});

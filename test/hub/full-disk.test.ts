import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Hub, startHub } from '../../src/hub/hub.js';
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
    } catch {}
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
});

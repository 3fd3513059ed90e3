import { chmodSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { rampart, removeDir, tempDir } from './harness.js';

const req = requirements('data folder permissions and listeners', ['netns', 'cmd:nft', 'cmd:ss']);

/** Every file and folder below `dir`, with its permission bits. */
function walk(dir: string, out: Array<{ path: string; mode: number; dir: boolean }> = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    out.push({ path, mode: st.mode & 0o777, dir: st.isDirectory() });
    if (st.isDirectory()) walk(path, out);
  }
  return out;
}

/**
 * What `rampart up` leaves on disk and on the network, in a namespace of its own: secrets and
 * databases readable by their owner only, and nothing listening beyond loopback unless asked.
 */
describe.skipIf(req.skip)('rampart up: data folder and listeners', () => {
  let lan: Lan;
  let dir: string;
  beforeAll(async () => {
    lan = await createLan(1, 'perm');
    dir = tempDir('perm');
  });
  afterAll(async () => {
    await lan?.destroy();
    if (dir) removeDir(dir);
  });

  const up = () => rampart(lan.hosts[0]!, ['up', '--data', dir, '--no-auth-log', '--firewall', 'nftables']);

  it('creates every file 0600 and every folder 0700, and listens on loopback only', async () => {
    const p = up();
    try {
      await p.waitFor((l) => l.msg === 're-applied local bans', 30_000, 'up started');
      const entries = walk(dir);
      expect(entries.length).toBeGreaterThan(5);
      const loose = entries.filter((e) => (e.dir ? e.mode & 0o077 : e.mode & 0o177));
      expect(loose.map((e) => `${e.path} ${e.mode.toString(8)}`)).toEqual([]);
      for (const f of ['hub/hub.key', 'hub/admin.token', 'hub/hub.db', 'agent/node.key'])
        expect(entries.some((e) => e.path === join(dir, f))).toBe(true);
      const ss = await lan.hosts[0]!.exec('ss', ['-Hltnu']);
      const local = ss
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[4]!);
      expect(local.length).toBeGreaterThanOrEqual(2);
      for (const addr of local) expect(addr).toMatch(/^(127\.0\.0\.1|\[::1\]):\d+$/);
    } finally {
      await p.stop();
    }
  });

  it('refuses to start when a key or the admin token is readable by others, naming the file and the fix', async () => {
    for (const f of ['hub/hub.key', 'hub/admin.token', 'agent/node.key']) {
      const path = join(dir, f);
      chmodSync(path, 0o644);
      const p = up();
      try {
        const code = await p.exited();
        expect(code, `${f} 0644 accepted`).not.toBe(0);
        expect(p.text.join('')).toContain(`run: chmod 600 ${path}`);
      } finally {
        await p.stop();
        chmodSync(path, 0o600);
      }
    }
  });
});

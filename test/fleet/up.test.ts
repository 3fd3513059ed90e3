import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLan, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import {
  appendLog,
  cli,
  createLog,
  inKernelSet,
  rampart,
  removeDir,
  sshdFailures,
  tempDir,
  until,
} from './harness.js';

const req = requirements('rampart up', ['netns', 'cmd:nft']);

describe.skipIf(req.skip)('rampart up (hub + agent in one process)', () => {
  let lan: Lan;
  let dir: string;
  beforeAll(async () => {
    lan = await createLan(1, 'up');
    dir = tempDir('up');
  });
  afterAll(async () => {
    await lan?.destroy();
    if (dir) removeDir(dir);
  });

  it('starts on embedded defaults, bans from its watched log, stops on SIGTERM and resumes on a second start', async () => {
    const host = lan.hosts[0]!;
    const log = `${dir}/auth.log`;
    createLog(log);
    const args = ['up', '--data', dir, '--watch', log, '--no-auth-log', '--firewall', 'nftables'];
    const first = rampart(host, args);
    try {
      await first.waitFor((l) => l.msg === 're-applied local bans', 30_000, 'agent started');
      await until(() => first.text.join('').includes('rampart is up'), 10_000, 'banner');
      const banner = first.text.join('');
      expect(banner).toMatch(/enrolled now/);
      expect(banner).toMatch(/API: +http:\/\/127\.0\.0\.1:7780/);
      expect(banner).toMatch(/rampart nodes add web2/);
      expect(banner).toContain(log);
      appendLog(log, sshdFailures('192.0.2.44', 5));
      await until(() => inKernelSet(host, '192.0.2.44'), 15_000, 'local ban in the kernel');
      // The hub confirmed it: it is in the fleet's log with this node as origin.
      await until(
        async () => (await cli(host, ['list', '--json', '--data', dir])).includes('192.0.2.44'),
        10_000,
        'in the log',
      );
    } finally {
      expect(await first.stop()).toBe(0);
    }
    expect(first.text.join('')).toMatch(/shutting down/);

    const second = rampart(host, args);
    try {
      await second.waitFor((l) => l.msg === 're-applied local bans', 30_000, 're-applied');
      expect(second.lines.find((l) => l.msg === 're-applied local bans')?.restored).toBe(1);
      await until(() => second.text.join('').includes('rampart is up'), 15_000, 'banner');
      expect(second.text.join('')).not.toMatch(/enrolled now/);
      const list = JSON.parse(await cli(host, ['list', '--json', '--data', dir])) as {
        items: Array<{ target: string }>;
      };
      expect(list.items.map((d) => d.target)).toContain('192.0.2.44');
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});

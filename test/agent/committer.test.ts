import { describe, expect, it, vi } from 'vitest';
import { Committer } from '../../src/agent/committer.js';
import { parseTarget } from '../../src/core/address.js';
import { silentLogger } from '../../src/core/logger.js';
import { RecordingFirewall } from './recording-firewall.js';

describe('committer', () => {
  it('coalesces a burst of staged bans into few commits', async () => {
    const fw = new RecordingFirewall();
    const c = new Committer(fw, silentLogger());
    const done: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      fw.add(parseTarget(`198.18.${i >> 8}.${i & 255}`), 60);
      done.push(c.schedule());
    }
    await Promise.all(done);
    expect(fw.committed.size).toBe(1000);
    expect(fw.commits).toBeLessThanOrEqual(2);
  });

  it('collects after a burst of 10,000 once commits stop, not between the envelopes of one import', async () => {
    const fw = new RecordingFirewall();
    let collections = 0;
    const c = new Committer(fw, silentLogger(), 2000, 0, { collect: () => collections++, quietMs: 200 });
    // Twenty-four envelopes of 500, each committed before the next arrives: the staging runs dry
    // between them, as it does for a bulk import over the bus.
    for (let e = 0; e < 24; e++) {
      for (let i = 0; i < 500; i++)
        fw.add(parseTarget(`198.18.${(e * 500 + i) >> 8}.${(e * 500 + i) & 255}`), 60);
      await c.schedule();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fw.committed.size).toBe(12_000);
    expect(collections).toBe(0);
    await vi.waitFor(() => expect(collections).toBe(1), { timeout: 2_000, interval: 20 });
    c.stop();
  });

  it('no commit runs while reconcile holds the lock: a ban committed between its read and its repair would be lost', async () => {
    const fw = new RecordingFirewall();
    const c = new Committer(fw, silentLogger());
    const order: string[] = [];
    let inside!: () => void;
    const entered = new Promise<void>((r) => {
      inside = r;
    });
    const reconcile = c.exclusive(async () => {
      order.push('reconcile read');
      inside();
      await new Promise((r) => setTimeout(r, 50));
      order.push('reconcile repair');
    });
    await entered;
    fw.add(parseTarget('192.0.2.1'), 60);
    const committed = c.schedule().then(() => order.push('commit'));
    await Promise.all([reconcile, committed]);
    expect(order).toEqual(['reconcile read', 'reconcile repair', 'commit']);
    expect(fw.targets()).toEqual(['192.0.2.1']);
  });

  it('a lone ban reaches the firewall without waiting on any timer', async () => {
    // Timers frozen: a commit that waited on a batching delay would never happen.
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval'] });
    try {
      const fw = new RecordingFirewall();
      const c = new Committer(fw, silentLogger());
      fw.add(parseTarget('192.0.2.7'), 60);
      await c.schedule();
      expect(fw.targets()).toEqual(['192.0.2.7']);
      expect(fw.commits).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });
});

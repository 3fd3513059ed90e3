import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleMemory, type IdleMemoryOptions } from '../../src/agent/idle-memory.js';

/** An IdleMemory on fake timers, with its collection, compiler hold and RSS recorded. */
function setup(o: IdleMemoryOptions = {}) {
  const seen = { collections: [] as number[], holds: 0, releases: 0 };
  let rss = 60e6;
  const idle = new IdleMemory({
    quietMs: 5000,
    minGapMs: 60_000,
    minGrowthBytes: 2e6,
    burstUnits: 1000,
    now: () => Date.now(),
    rss: () => rss,
    collect: async () => {
      seen.collections.push(Date.now());
      rss -= 8e6;
      return true;
    },
    hold: () => {
      seen.holds++;
      return () => {
        seen.releases++;
      };
    },
    ...o,
  });
  const grow = (bytes: number) => {
    rss += bytes;
  };
  return { idle, seen, grow, start: Date.now() };
}

describe('idle memory: the collection after work and the compiler hold', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('collects once start-up has settled, not while work goes on', async () => {
    const { idle, seen, start } = setup();
    idle.startupOver(500);
    await vi.advanceTimersByTimeAsync(300);
    idle.work(10);
    await vi.advanceTimersByTimeAsync(300);
    expect(seen.collections).toEqual([]);
    await vi.advanceTimersByTimeAsync(300);
    expect(seen.collections).toEqual([start + 800]);
    idle.stop();
  });

  it('collects again after a later burst once quiet, at most once a minute, and only if RSS grew', async () => {
    const { idle, seen, grow, start } = setup();
    idle.startupOver(500);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.collections).toHaveLength(1);

    // Work that leaves RSS where it was: quiet, but nothing to hand back.
    await vi.advanceTimersByTimeAsync(60_000);
    idle.work(5);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen.collections).toHaveLength(1);

    // A burst that grew the process: collected 5 s after its last unit of work.
    idle.work(5000);
    grow(9e6);
    await vi.advanceTimersByTimeAsync(3000);
    idle.work(10);
    await vi.advanceTimersByTimeAsync(4999);
    expect(seen.collections).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.collections).toEqual([start + 500, start + 79_000]);

    // Another one right after: deferred until a minute after the previous collection.
    idle.work(5000);
    grow(9e6);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen.collections).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(50_000);
    expect(seen.collections).toEqual([start + 500, start + 79_000, start + 139_000]);

    // While nothing happens, one timer looks once a minute and collects nothing without growth.
    await vi.advanceTimersByTimeAsync(600_000);
    expect(seen.collections).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(1);
    idle.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('at idle, growth of minGrowth without any work is collected at the next look', async () => {
    const { idle, seen, grow, start } = setup();
    idle.startupOver(500);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.collections).toEqual([start + 500]);
    // New space filling up again, timers' and polls' garbage: no unit of work at all.
    grow(1.5e6);
    await vi.advanceTimersByTimeAsync(59_000);
    expect(seen.collections).toHaveLength(1);
    grow(1e6);
    await vi.advanceTimersByTimeAsync(1000);
    expect(seen.collections).toEqual([start + 500, start + 60_500]);
    idle.stop();
  });

  it('holds the compiler through light work, lets it go for a burst and holds it again once quiet', async () => {
    const { idle, seen } = setup();
    expect(idle.compilerHeld).toBe(true);
    // Light work with quiet periods in between: 1,800 units in all, never 1,000 between two.
    for (let i = 0; i < 3; i++) {
      idle.work(300);
      await vi.advanceTimersByTimeAsync(1000);
      idle.work(300);
      await vi.advanceTimersByTimeAsync(6000);
    }
    expect(idle.compilerHeld).toBe(true);
    expect(seen.releases).toBe(0);

    // 1,000 units before the next quiet period, in pieces 4 s apart.
    for (let i = 0; i < 10; i++) {
      await vi.advanceTimersByTimeAsync(4000);
      expect(idle.compilerHeld).toBe(true);
      idle.work(100);
    }
    expect(idle.compilerHeld).toBe(false);
    expect(seen.releases).toBe(1);
    await vi.advanceTimersByTimeAsync(4000);
    expect(idle.compilerHeld).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(idle.compilerHeld).toBe(true);
    expect(seen.holds).toBe(2);

    // One piece of work that size (a restore, a catch-up page) lets it go before it runs.
    idle.work(10_000);
    expect(idle.compilerHeld).toBe(false);
    idle.stop();
    expect(seen.releases).toBe(2);
  });

  it('stop lets the compiler go and cancels a pending collection', async () => {
    const { idle, seen } = setup();
    idle.startupOver(500);
    idle.stop();
    idle.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(seen.collections).toEqual([]);
    expect(seen.releases).toBe(1);
    expect(idle.compilerHeld).toBe(false);
  });
});

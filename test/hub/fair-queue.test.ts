import { describe, expect, it } from 'vitest';
import { FairQueue, type FairQueueOptions } from '../../src/hub/intake/fair-queue.js';

/** A queue of strings whose size is their length; records what it served and dropped, in order. */
function queue(more: Partial<FairQueueOptions<string>> = {}) {
  const served: string[] = [];
  const dropped: string[] = [];
  const q = new FairQueue<string>({
    serve: (key, item) => {
      served.push(`${key}:${item}`);
      return undefined;
    },
    overflow: (key, item) => dropped.push(`${key}:${item}`),
    sizeOf: (item) => item.length,
    perKeyMessages: 1_000,
    perKeyBytes: 1_000_000,
    totalBytes: 10_000_000,
    sliceMs: 1_000,
    ...more,
  });
  return { q, served, dropped };
}

describe('per-sender fair queue', () => {
  it('serves a quiet sender right after one message of a sender with a thousand queued', async () => {
    const { q, served } = queue();
    for (let i = 0; i < 1_000; i++) q.push('bad', String(i));
    q.push('good', 'honest');
    await q.idle();
    expect(served.indexOf('good:honest')).toBe(1);
    expect(served).toHaveLength(1_001);
    expect(q.stats().get('good')).toMatchObject({ served: 1, maxWaited: 1, queued: 0 });
    expect(q.stats().get('bad')).toMatchObject({ served: 1_000, peak: 1_000 });
  });

  it('keeps each sender’s order, also across a paused step', async () => {
    const served: string[] = [];
    let release: () => void = () => undefined;
    const q = new FairQueue<string>({
      // The first message of `a` needs an asynchronous step (a key lookup): `a` waits for it.
      serve: (key, item) => {
        served.push(`${key}:${item}`);
        if (key === 'a' && item === '0')
          return new Promise<void>((r) => {
            release = r;
          });
        return undefined;
      },
      overflow: () => undefined,
      sizeOf: () => 1,
      perKeyMessages: 100,
      perKeyBytes: 100,
      totalBytes: 1_000,
      sliceMs: 1_000,
    });
    for (let i = 0; i < 3; i++) {
      q.push('a', String(i));
      q.push('b', String(i));
    }
    await new Promise((r) => setImmediate(r));
    // `b` went on without `a`; `a` is held at its first message.
    expect(served).toEqual(['a:0', 'b:0', 'b:1', 'b:2']);
    release();
    await q.idle();
    expect(served.filter((s) => s.startsWith('a:'))).toEqual(['a:0', 'a:1', 'a:2']);
  });

  it('refuses past a sender’s bound without touching another sender’s queue', async () => {
    const { q, served, dropped } = queue({ perKeyMessages: 10 });
    for (let i = 0; i < 15; i++) q.push('bad', String(i));
    expect(q.push('good', 'x')).toBe(true);
    expect(dropped).toEqual(['bad:10', 'bad:11', 'bad:12', 'bad:13', 'bad:14']);
    await q.idle();
    expect(served).toContain('good:x');
  });

  it('when the whole intake is full, the longest queue loses its newest messages', async () => {
    const { q, served, dropped } = queue({ totalBytes: 10 });
    for (let i = 0; i < 10; i++) q.push('bad', String(i));
    // The short queue's message takes the place of the flood's newest.
    expect(q.push('good', 'x')).toBe(true);
    expect(dropped).toEqual(['bad:9']);
    // The flood's own next message is refused: its queue is the longest.
    expect(q.push('bad', 'y')).toBe(false);
    expect(dropped).toEqual(['bad:9', 'bad:y']);
    await q.idle();
    expect(served.indexOf('good:x')).toBe(1);
  });

  it('yields to the event loop between slices', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const { q, served } = queue({
      sliceMs: 1,
      serve: (_key, item) => {
        // Each message costs about a millisecond of work.
        const end = performance.now() + 1;
        while (performance.now() < end);
        served.push(item);
        return undefined;
      },
    });
    for (let i = 0; i < 30; i++) q.push('bad', String(i));
    await q.idle();
    clearInterval(timer);
    expect(served).toHaveLength(30);
    // Timers ran while the queue drained: it did not hold the loop for all 30 ms at once.
    expect(ticks).toBeGreaterThan(1);
  });
});

import { describe, expect, it } from 'vitest';
import { OffenderThrottle } from '../../src/hub/intake/offender-throttle.js';

/** A throttle on a hand-moved clock that records every hold it asks for. */
function throttle(o = {}) {
  let now = 0;
  const holds: Array<{ node: string; ms: number }> = [];
  const t = new OffenderThrottle(
    (node, ms) => {
      holds.push({ node, ms });
      return 1;
    },
    () => undefined,
    { strikes: 10, refillPerSecond: 2, firstHoldMs: 1_000, maxHoldMs: 8_000, now: () => now, ...o },
  );
  return {
    t,
    holds,
    at: (ms: number) => {
      now = ms;
    },
  };
}

describe('offender throttle', () => {
  it('holds a node once its refusals outrun the bucket, and only that node', () => {
    const { t, holds } = throttle();
    for (let i = 0; i < 10; i++) t.strike('bad', 'malformed');
    expect(holds).toEqual([]);
    t.strike('bad', 'malformed');
    expect(holds).toEqual([{ node: 'bad', ms: 1_000 }]);
    for (let i = 0; i < 5; i++) t.strike('good', 'bad-signature');
    expect(holds).toHaveLength(1);
  });

  it('refusals of what was sent before the hold do not extend it', () => {
    const { t, holds, at } = throttle();
    for (let i = 0; i < 11; i++) t.strike('bad', 'malformed');
    at(500);
    for (let i = 0; i < 100; i++) t.strike('bad', 'malformed');
    expect(holds).toHaveLength(1);
  });

  it('doubles the hold while the node goes on, up to the cap, and starts over after a calm spell', () => {
    const { t, holds, at } = throttle();
    let clock = 0;
    const burst = () => {
      for (let i = 0; i < 11; i++) t.strike('bad', 'malformed');
    };
    for (let k = 0; k < 6; k++) {
      burst();
      clock += holds.at(-1)!.ms;
      at(clock);
    }
    expect(holds.map((h) => h.ms)).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    at(clock + 60_000);
    for (let i = 0; i < 11; i++) t.strike('bad', 'malformed');
    expect(holds.at(-1)!.ms).toBe(1_000);
  });

  it('a busy node’s reports past its budget weigh a tenth: a burst does not hold it, a flood does', () => {
    const { t, holds } = throttle();
    for (let i = 0; i < 90; i++) t.strike('busy', 'over-budget');
    expect(holds).toEqual([]);
    for (let i = 0; i < 30; i++) t.strike('busy', 'queue-full');
    expect(holds).toEqual([{ node: 'busy', ms: 1_000 }]);
  });

  it('forgives refusals over time', () => {
    const { t, holds, at } = throttle();
    for (let i = 0; i < 10; i++) t.strike('n', 'malformed');
    at(5_000); // 10 tokens back at 2 a second
    for (let i = 0; i < 10; i++) t.strike('n', 'malformed');
    expect(holds).toEqual([]);
  });
});

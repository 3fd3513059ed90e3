import { describe, expect, it } from 'vitest';
import { costBounded } from '../../src/core/cost-bounded.js';

describe('costBounded', () => {
  // A clock the computation itself moves: each call "costs" `cost` ms.
  function counter(cost: number) {
    let t = 0;
    let calls = 0;
    const read = costBounded(
      () => {
        calls++;
        t += cost;
        return calls;
      },
      { now: () => t },
    );
    return {
      read,
      wait: (ms: number) => {
        t += ms;
      },
      calls: () => calls,
    };
  }

  it('serves the last value until 100 times its cost has passed, then computes again', () => {
    const c = counter(400);
    expect(c.read()).toBe(1);
    c.wait(39_000);
    expect(c.read()).toBe(1);
    c.wait(1_000);
    expect(c.read()).toBe(2);
    expect(c.calls()).toBe(2);
  });

  it('a cheap value stays as good as fresh', () => {
    const c = counter(0.05);
    expect(c.read()).toBe(1);
    c.wait(5);
    expect(c.read()).toBe(2);
  });

  it('read in a tight loop, it takes at most its share of the time', () => {
    const c = counter(10);
    const end = 60_000;
    let t = 0;
    while (t < end) {
      c.read();
      c.wait(1);
      t += 1;
    }
    // 10 ms per computation, at most 1 % of the time: about 60 computations in a minute, not thousands.
    expect(c.calls()).toBeLessThanOrEqual(61);
    expect(c.calls()).toBeGreaterThan(30);
  });

  it('takes the share it is given', () => {
    let t = 0;
    let calls = 0;
    const read = costBounded(
      () => {
        calls++;
        t += 10;
      },
      { share: 0.5, now: () => t },
    );
    read();
    t += 19;
    read();
    expect(calls).toBe(1);
    t += 1;
    read();
    expect(calls).toBe(2);
  });
});

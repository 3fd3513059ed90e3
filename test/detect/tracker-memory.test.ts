import { describe, expect, it } from 'vitest';
import { Engine, trackedCap } from '../../src/detect/engine.js';
import { TrackerState, trackerStateBytes } from '../../src/detect/tracker-state.js';
import { trackerTableBytes } from '../../src/detect/tracker-table.js';
import { testRule } from './rule-spec.js';

const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);
const line = (sec: number, text: string) => ({
  text: `${new Date(T0 + sec * 1000).toISOString()} ${text}`,
  source: 'test',
});

describe('Engine - tracker state in typed arrays', () => {
  it('state for thousands of addresses keeps the flags and counts of each', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 2 })], { clock: 'log' });
    // 3000 addresses, each unbannable one (127/8) right after a bannable one: the flag of one
    // slot must never reach its neighbour in the shared record buffer.
    const events = [];
    for (let i = 0; i < 3000; i++) {
      const a = `198.51.${(i >> 8) & 255}.${i & 255}`;
      const loop = `127.0.${(i >> 8) & 255}.${i & 255}`;
      events.push(...e.feed(line(1, `fail from ${a}`)), ...e.feed(line(1, `fail from ${loop}`)));
      events.push(...e.feed(line(2, `fail from ${loop}`)));
    }
    expect(events).toEqual([]);
    for (let i = 0; i < 3000; i += 1000) {
      const ev = e.feed(line(3, `fail from 198.51.${(i >> 8) & 255}.${i & 255}`));
      expect(ev.map((x) => [x.target.text, x.hits])).toEqual([[`198.51.${(i >> 8) & 255}.${i & 255}`, 2]]);
    }
    expect(e.stats()).toMatchObject({ tracked: 6000, skipped: 6000, bans: 3 });
  });

  it('rules of different maxretry keep their own rings; evictions free the right ones', () => {
    const rules = [
      testRule(['^a from <HOST>$'], { name: 'a', maxretry: 2 }),
      testRule(['^b from <HOST>$'], { name: 'b', maxretry: 4 }),
    ];
    const e = new Engine(rules, { clock: 'log', maxTracked: 8, ignoreSources: true });
    // Heavy churn over both rules and both families with a tiny cap: a slot freed into the
    // wrong state would overfill the other (it holds at most cap + 1) and throw.
    for (let i = 0; i < 5000; i++) {
      e.feed(line(1, `${i % 2 === 0 ? 'a' : 'b'} from 198.51.100.${i % 250}`));
      e.feed(line(1, `${i % 3 === 0 ? 'a' : 'b'} from 2001:db8:${i.toString(16)}::1`));
    }
    expect(e.stats().evictions).toBeGreaterThan(1000);
    const ban = (r: string, ip: string, n: number) => {
      const out = [];
      for (let i = 0; i < n; i++) out.push(...e.feed(line(10, `${r} from ${ip}`)));
      return out.map((x) => [x.rule, x.hits]);
    };
    expect(ban('a', '192.0.2.1', 2)).toEqual([['a', 2]]);
    expect(ban('b', '192.0.2.1', 3)).toEqual([]);
    expect(ban('b', '192.0.2.1', 1)).toEqual([['b', 4]]);
  });

  it('IPv6 trackers are keyed by the widened prefix, in the same table as IPv4', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 3, widen6: 64 })], { clock: 'log' });
    e.feed(line(0, 'fail from 2001:db8:1:2::1'));
    e.feed(line(1, 'fail from 2001:db8:1:2:ffff::9'));
    e.feed(line(1, 'fail from 2001:db8:1:3::1'));
    e.feed(line(1, 'fail from 192.0.2.1'));
    const ev = e.feed(line(2, 'fail from 2001:db8:1:2::abcd'));
    expect(ev.map((x) => [x.target.text, x.hits])).toEqual([['2001:db8:1:2::/64', 3]]);
    expect(e.stats().tracked).toBe(3);
  });
});

describe('trackedCap - the memory cap as a byte budget', () => {
  it('keeps the pair cap when it fits and lowers it until the worst case fits the budget', () => {
    expect(trackedCap(1000, 64 * 1024 * 1024, [5])).toBe(1000);
    for (const [budget, ring] of [
      [64 * 1024 * 1024, 5],
      [16 * 1024 * 1024, 20],
      [256 * 1024 * 1024, 5],
    ] as const) {
      const cap = trackedCap(10_000_000, budget, [ring]);
      const cost = (n: number) => trackerTableBytes(n) + trackerStateBytes(n + 1, ring);
      expect(cost(cap)).toBeLessThanOrEqual(budget);
      // Not wastefully low: an eighth more does not fit.
      expect(cost(Math.ceil(cap * 1.125))).toBeGreaterThan(budget);
    }
    // A budget too small for anything still tracks two pairs.
    expect(trackedCap(1_000_000, 1, [5])).toBe(2);
  });

  it('an engine under a small budget evicts instead of growing', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'])], {
      clock: 'log',
      maxTrackedBytes: 2 * 1024 * 1024,
    });
    for (let i = 0; i < 200_000; i++)
      e.feed({ text: `fail from 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, source: 's' });
    const s = e.stats();
    expect(s.tracked).toBeLessThanOrEqual(trackedCap(1_000_000, 2 * 1024 * 1024, [3]));
    expect(s.evictions).toBeGreaterThan(100_000);
  });
});

describe('TrackerState - compact failure times', () => {
  it('tenths of a second since the first time seen, in order, clamped to int32', () => {
    const s = new TrackerState(5, 10);
    const t0 = Date.UTC(2026, 10, 21);
    expect(s.tick(t0)).toBe(0);
    expect(s.tick(t0 + 99)).toBe(0);
    expect(s.tick(t0 + 100)).toBe(1);
    expect(s.tick(t0 - 1)).toBe(-1);
    expect(s.tick(t0 + 3600_000)).toBe(36_000);
    expect(s.tick(t0 + 1e12)).toBe(0x7fffffff);
    expect(s.tick(t0 - 1e12)).toBe(-0x80000000);
  });

  it('a failure exactly one findtime old has left the window; one 100 ms younger has not', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 2, findtime: 60 })], { clock: 'log' });
    e.feed(line(0, 'fail from 192.0.2.1'));
    expect(e.feed(line(60, 'fail from 192.0.2.1'))).toEqual([]);
    e.feed(line(100, 'fail from 192.0.2.2'));
    expect(e.feed(line(159.9, 'fail from 192.0.2.2')).map((x) => x.hits)).toEqual([2]);
  });
});

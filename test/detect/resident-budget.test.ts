import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/detect/engine.js';
import type { DetectEvent } from '../../src/detect/types.js';
import { testRule } from './rule-spec.js';
import { rng } from './seeded-random.js';

// Engine `maxResidentBytes` (docs/adr/0065): the key tables and tracker state never hold more
// than the budget in use, whatever the log; below it, nothing changes.

const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);
const at = (sec: number, text: string) => ({
  text: `${new Date(T0 + sec * 1000).toISOString()} ${text}`,
  source: 'test',
});
const v4 = (i: number) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;
const v6 = (i: number) => `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;
const BUDGET = 256 * 1024;
/** One record of the largest ring used below (maxretry 20): what a state may take past the budget. */
const SLACK = (2 + 19) * 4;

/** The most bytes in use and the most pairs tracked while feeding the flood. */
function flood(e: Engine, n: number, address: (i: number) => string, times = 1): [number, number] {
  let most = 0;
  let pairs = 0;
  for (let k = 0; k < times; k++)
    for (let i = 0; i < n; i++) {
      e.feed(at(i / 100, `fail from ${address(i)}`));
      most = Math.max(most, e.residentBytes());
      if (i % 64 === 0) pairs = Math.max(pairs, e.stats().tracked);
    }
  return [most, pairs];
}

describe('Engine - resident byte budget', () => {
  it('an IPv4 flood, an IPv6 one and repeat offenders stay within the budget, evicting', () => {
    const rules = [testRule(['^fail from <HOST>$'], { maxretry: 5 })];
    const shapes: Array<[string, (i: number) => string, number]> = [
      ['v4 once', v4, 1],
      ['v6 once', v6, 1],
      ['v4 thrice', v4, 3],
      ['v6 twice', v6, 2],
    ];
    const held: Record<string, number> = {};
    for (const [name, address, times] of shapes) {
      const e = new Engine(rules, { clock: 'log', maxResidentBytes: BUDGET });
      const [most, pairs] = flood(e, 60_000, address, times);
      expect(most, name).toBeLessThanOrEqual(BUDGET + SLACK);
      expect(e.stats().evictions, name).toBeGreaterThan(10_000);
      held[name] = pairs;
    }
    // Bytes in use, not a pair cap: IPv4 key slots are half the size of IPv6 ones.
    expect(held['v4 once']!).toBeGreaterThan(held['v6 once']! * 1.5);
  });

  it('several rules, the longest ring among them, in both families: within the budget', () => {
    const rules = [
      testRule(['^a from <HOST>$'], { name: 'a', maxretry: 20 }),
      testRule(['^b from <HOST>$'], { name: 'b', maxretry: 1 }),
      testRule(['^c from <HOST>$'], { name: 'c', maxretry: 5 }),
    ];
    const e = new Engine(rules, { clock: 'log', maxResidentBytes: BUDGET, ignoreSources: true });
    let most = 0;
    for (let k = 0; k < 3; k++)
      for (let i = 0; i < 30_000; i++) {
        const r = 'abc'[i % 3];
        e.feed(at(i / 100, `${r} from ${i % 4 === 3 ? v6(i) : v4(i)}`));
        most = Math.max(most, e.residentBytes());
      }
    expect(most).toBeLessThanOrEqual(BUDGET + SLACK);
    expect(e.stats().evictions).toBeGreaterThan(10_000);
  });

  it('what was seen last survives a flood: an attacker failing in a row is still banned', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 5 })], {
      clock: 'log',
      maxResidentBytes: BUDGET,
    });
    const bans: DetectEvent[] = [];
    for (let i = 0; i < 100_000; i++) {
      e.feed(at(i / 1000, `fail from ${v4(i)}`));
      if (i % 997 === 0) bans.push(...e.feed(at(i / 1000, 'fail from 192.0.2.7')));
    }
    expect(bans.map((b) => [b.target.text, b.hits])).toEqual([['192.0.2.7', 5]]);
  });

  it('a budget smaller than the empty tables: every record drops all pairs, the failing one kept', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 5 })], {
      clock: 'log',
      maxResidentBytes: 1,
    });
    const hits = [];
    for (let round = 0; round < 3; round++) {
      e.feed(at(round * 1000, `fail from ${v4(round)}`));
      for (let i = 0; i < 5; i++)
        for (const b of e.feed(at(round * 1000 + i, 'fail from 192.0.2.9'))) hits.push(b.hits);
    }
    // Banned in the first round after 5 failures; still banned (600 s) in none of the later ones
    // only if the record survived: each round is 1,000 s later, so each bans again.
    expect(hits).toEqual([5, 5, 5]);
    expect(e.stats().evictions).toBeGreaterThan(0);
  });

  it('below the budget, the same events as without one (random dense failures, both families)', () => {
    const rules = [
      testRule(['^a from <HOST>$'], { name: 'a', maxretry: 3, findtime: 300, good: ['^ok from <HOST>$'] }),
      testRule(['^b from <HOST>$'], { name: 'b', maxretry: 6, findtime: 600 }),
    ];
    const run = (opts: { maxResidentBytes?: number }) => {
      const e = new Engine(rules, { clock: 'log', ignoreSources: true, ...opts });
      const rand = rng(11);
      const events: string[] = [];
      let t = 0;
      for (let i = 0; i < 40_000; i++) {
        t += rand() * 0.5;
        // Most lines from a few hundred addresses (bans), the rest from many (table growth).
        const n = rand() < 0.7 ? Math.floor(rand() * 400) : 400 + Math.floor(rand() * 20_000);
        const ip = n % 5 === 0 ? v6(n) : v4(n);
        const what = rand() < 0.05 ? 'ok' : rand() < 0.5 ? 'a' : 'b';
        for (const ev of e.feed(at(t, `${what} from ${ip}`)))
          events.push(`${ev.type} ${ev.rule} ${ev.target.text} ${ev.at} ${ev.hits}`);
      }
      return { events, stats: e.stats() };
    };
    const free = run({});
    const budgeted = run({ maxResidentBytes: 4 * 1024 * 1024 });
    expect(free.events.length).toBeGreaterThan(100);
    expect(budgeted.stats.evictions).toBe(0);
    expect(budgeted.events).toEqual(free.events);
  });
});

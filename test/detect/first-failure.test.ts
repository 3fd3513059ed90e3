import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/detect/engine.js';
import type { RuleSpec } from '../../src/detect/rule.js';
import { testRule } from './rule-spec.js';
import { rng } from './seeded-random.js';

// A pair's first failure lives in its tracker-table slot and its record is made at the second
// (docs/adr/0042): the bans must be those of the plain counting rules, whatever the order.

const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);
const DAY = 86_400;

/** The counting rules, written plainly: failure times per (rule, address) in arrival order. */
class Model {
  private readonly pairs = new Map<string, { times: number[]; until: number; banned: boolean }>();
  constructor(private readonly rules: Map<string, RuleSpec>) {}

  fail(rule: string, ip: string, at: number): string | null {
    const r = this.rules.get(rule)!;
    const key = `${rule}|${ip}`;
    const p = this.pairs.get(key) ?? { times: [], until: Number.NEGATIVE_INFINITY, banned: false };
    this.pairs.set(key, p);
    // A failure inside the ban does not count. The first one past its end lifts it for good, as
    // an unban in fail2ban or sshguard is final: a line that arrives later with an older time (a
    // merged log) counts as a new failure, and a good line then has no ban to lift.
    if (p.banned) {
      if (p.until > at) return null;
      p.banned = false;
    }
    // As the engine's ring: all gone when the newest left the window, else from the oldest on.
    const horizon = at - r.findtime * 1000;
    if (p.times.length > 0 && p.times[p.times.length - 1]! <= horizon) p.times = [];
    while (p.times.length > 0 && p.times[0]! <= horizon) p.times.shift();
    if (p.times.length === r.maxretry) p.times.shift();
    p.times.push(at);
    if (p.times.length < r.maxretry) return null;
    const hits = p.times.length;
    p.times = [];
    p.until = at + r.bantime! * 1000;
    p.banned = true;
    return `ban ${rule} ${ip} ${hits}`;
  }

  good(rule: string, ip: string, at: number): string | null {
    const key = `${rule}|${ip}`;
    const p = this.pairs.get(key);
    this.pairs.delete(key);
    return p?.banned && p.until > at ? `unban ${rule} ${ip} 0` : null;
  }
}

describe('Engine - first failure kept in the key slot', () => {
  it('bans as the plain counting rules do (random failures, good lines, time jumps both ways)', () => {
    // Few addresses, so pairs fail often; IPv6 too (kept as four words), and loopback, which is
    // never banned (its record is made at once).
    const ips = [
      ...Array.from({ length: 12 }, (_, i) => `192.0.2.${i + 1}`),
      ...Array.from({ length: 6 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`),
      '127.0.0.9',
    ];
    for (const seed of [1, 2, 3]) {
      const { got, want } = replay(seed, ips, 25);
      expect(got.length).toBeGreaterThan(1000);
      expect(got).toEqual(want);
    }
  });

  it('bans as the plain counting rules do when pairs fail two and three times inside the window', () => {
    // Steps of at most 4 s over 5 addresses: a pair's second and third failures mostly come
    // within its 60 s window, kept in its key's slot then moved to a record (docs/adr/0059).
    const ips = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1', '2001:db8::2'];
    for (const seed of [4, 5]) {
      const { got, want } = replay(seed, ips, 5, false);
      expect(got.length).toBeGreaterThan(1000);
      expect(got).toEqual(want);
    }
  });

  it('bans as the plain counting rules do when pairs fail densely and times go back (merged logs)', () => {
    // Dense failures, as above, with jumps forward and steps back of up to 90 s: a step back
    // lands inside a ban the engine has already seen end (docs/adr/0065).
    const ips = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1', '2001:db8::2'];
    for (const seed of [4, 5, 6, 7]) {
      const { got, want } = replay(seed, ips, 5);
      expect(got.length).toBeGreaterThan(1000);
      expect(got).toEqual(want);
    }
  });

  it('a tiny cap evicts pairs with one failure and pairs with records alike, and frees only records', () => {
    const e = new Engine([testRule(['^fail from <HOST>$'], { maxretry: 3 })], {
      clock: 'log',
      maxTracked: 16,
    });
    // Mostly single failures (kept in slots), some addresses failing twice (records): a record
    // not freed on eviction, or a slot freed twice, would overfill the state (it throws).
    for (let i = 0; i < 20_000; i++) {
      const ip = `198.51.${(i >> 8) & 255}.${i & 255}`;
      e.feed({ text: `${new Date(T0 + i * 1000).toISOString()} fail from ${ip}`, source: 't' });
      if (i % 3 === 0)
        e.feed({ text: `${new Date(T0 + i * 1000).toISOString()} fail from ${ip}`, source: 't' });
    }
    expect(e.stats().evictions).toBeGreaterThan(19_000);
    const at = new Date(T0 + 30_000_000).toISOString();
    const bans = [1, 2, 3].flatMap(() => e.feed({ text: `${at} fail from 192.0.2.7`, source: 't' }));
    expect(bans.map((b) => [b.target.text, b.hits])).toEqual([['192.0.2.7', 3]]);
  });
});

const SPECS = [1, 2, 3, 5].map((maxretry, i) =>
  testRule([`^r${i} from <HOST>$`], {
    name: `r${i}`,
    maxretry,
    findtime: 60,
    bantime: 120,
    good: [`^ok${i} from <HOST>$`],
  }),
);

/**
 * 40,000 random failures and good lines from `ips`, through the engine and the model; steps
 * of up to `maxStep` seconds, now and then 200 days on (past the ±155 days a slot's first failure
 * may be kept in; 8 times at most, inside the ±6.8 years failure times hold), or back in time
 * (unsorted logs), unless `jumps` is false.
 */
function replay(
  seed: number,
  ips: string[],
  maxStep: number,
  jumps = true,
): { got: string[]; want: string[] } {
  const e = new Engine(SPECS, { clock: 'log', ignoreSources: true });
  const m = new Model(new Map(SPECS.map((s) => [s.name, s])));
  const next = rng(seed);
  let sec = 0;
  let jumped = 0;
  const got: string[] = [];
  const want: string[] = [];
  for (let op = 0; op < 40_000; op++) {
    const r = next();
    const jump = jumps && r < 0.002 && jumped < 8;
    if (jump) jumped++;
    sec += jump ? 200 * DAY : jumps && r < 0.004 ? -Math.floor(next() * 90) : Math.floor(next() * maxStep);
    const rule = Math.floor(next() * SPECS.length);
    const ip = ips[Math.floor(next() * ips.length)]!;
    const good = next() < 0.05;
    const text = `${good ? `ok${rule}` : `r${rule}`} from ${ip}`;
    for (const ev of e.feed({ text: `${new Date(T0 + sec * 1000).toISOString()} ${text}`, source: 't' }))
      got.push(`${ev.type} ${ev.rule} ${ev.target.text} ${ev.hits}`);
    const at = T0 + sec * 1000;
    const w = good ? m.good(`r${rule}`, ip, at) : ip.startsWith('127.') ? null : m.fail(`r${rule}`, ip, at);
    if (w !== null) want.push(w);
  }
  return { got, want };
}

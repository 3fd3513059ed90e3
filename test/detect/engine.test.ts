import { describe, expect, it } from 'vitest';
import { Allowlist } from '../../src/core/allowlist.js';
import { Engine, type EngineOptions, escalate } from '../../src/detect/engine.js';
import type { RuleSpec } from '../../src/detect/rule.js';
import { builtinRule } from '../../src/detect/rules-file.js';
import type { DetectEvent } from '../../src/detect/types.js';

const T0 = Date.UTC(2026, 10, 21, 12, 0, 0);

function rule(extra: Partial<RuleSpec> = {}): RuleSpec {
  return {
    name: 'r',
    sources: [],
    patterns: ['^fail from <HOST>$'],
    ignore: [],
    good: ['^ok from <HOST>$'],
    maxretry: 3,
    findtime: 60,
    bantime: 100,
    ignoreNets: [],
    set: 'blocklist',
    ...extra,
  };
}

/** Feeds `text` with an ISO stamp `sec` seconds after T0, in log-clock mode. */
function at(sec: number, text: string) {
  return { text: `${new Date(T0 + sec * 1000).toISOString()} ${text}`, source: 'test' };
}

function engine(specs: RuleSpec[], opts: Partial<EngineOptions> = {}) {
  return new Engine(specs, { clock: 'log', ...opts });
}

function feedAll(e: Engine, lines: Array<{ text: string; source: string }>): DetectEvent[] {
  return lines.flatMap((l) => e.feed(l));
}

describe('Engine - counting and banning', () => {
  it('maxretry failures within findtime ban the address, with log time and hit count', () => {
    const e = engine([rule()]);
    const events = feedAll(e, [
      at(0, 'fail from 192.0.2.1'),
      at(10, 'fail from 192.0.2.1'),
      at(20, 'fail from 192.0.2.1'),
    ]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'ban',
      rule: 'r',
      at: T0 + 20_000,
      hits: 3,
      duration: 100,
      set: 'blocklist',
      reason: 'r',
    });
    expect(events[0]!.target.text).toBe('192.0.2.1');
    expect(e.stats()).toMatchObject({ lines: 3, matched: 3, bans: 1 });
  });

  it('failures spread wider than findtime never ban', () => {
    const e = engine([rule()]);
    const events = feedAll(
      e,
      [0, 40, 80, 120, 160].map((s) => at(s, 'fail from 192.0.2.1')),
    );
    expect(events).toEqual([]);
  });

  it('wall-clock mode ignores the stamps and uses the clock', () => {
    let now = T0;
    const e = engine([rule()], { clock: 'wall', now: () => now });
    // Stamps an hour apart would never ban in log mode; the clock says they came together.
    const lines = [0, 3600, 7200].map((s) => at(s, 'fail from 192.0.2.1'));
    const events = lines.flatMap((l) => {
      now += 1000;
      return e.feed(l);
    });
    expect(events.map((x) => x.at)).toEqual([T0 + 3000]);
  });

  it('a maxretry that would make memory unbounded is refused, naming the rule', () => {
    expect(() => engine([rule({ maxretry: 1e9 })])).toThrow(/rule "r": maxretry must be/);
    expect(() => engine([rule({ maxretry: 0 })])).toThrow(/maxretry/);
  });

  it('maxretry above 10 works (banban capped its history at 10)', () => {
    const e = engine([rule({ maxretry: 15 })]);
    const events = feedAll(
      e,
      Array.from({ length: 15 }, (_, i) => at(i, 'fail from 192.0.2.1')),
    );
    expect(events.map((x) => x.hits)).toEqual([15]);
    expect(e.stats().matched).toBe(15);
  });

  it('while banned, more failures do not ban again; after expiry they count afresh', () => {
    const e = engine([rule()]);
    const events = feedAll(e, [
      ...[0, 1, 2].map((s) => at(s, 'fail from 192.0.2.1')),
      ...[3, 4, 5].map((s) => at(s, 'fail from 192.0.2.1')),
      ...[200, 201, 202].map((s) => at(s, 'fail from 192.0.2.1')),
    ]);
    expect(events.map((x) => x.at)).toEqual([T0 + 2000, T0 + 202_000]);
  });

  it('escalation: bantime × multiplier^(previous bans), capped', () => {
    const e = engine([rule({ escalation: { multiplier: 2, max: 300 } })]);
    const durations: Array<number | null> = [];
    let t = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3; i++)
        for (const ev of e.feed(at(t++, 'fail from 192.0.2.1'))) durations.push(ev.duration);
      t += 1000; // past any ban
    }
    expect(durations).toEqual([100, 200, 300, 300]);
  });

  it('escalation without a cap turns permanent past the longest ban the hub accepts', () => {
    const spec = rule({ bantime: 1_000_000_000, escalation: { multiplier: 4, max: null } });
    expect([0, 1, 2, 3].map((n) => escalate(spec, n))).toEqual([1e9, 4e9, null, null]);
    expect(escalate(rule({ bantime: 100, escalation: { multiplier: 2, max: null } }), 3)).toBe(800);
  });

  it('a good line clears the count and unbans what the engine banned', () => {
    const e = engine([rule()]);
    expect(
      feedAll(e, [at(0, 'fail from 192.0.2.1'), at(1, 'fail from 192.0.2.1'), at(2, 'ok from 192.0.2.1')]),
    ).toEqual([]);
    // The count restarted: two more failures are not enough.
    expect(feedAll(e, [at(3, 'fail from 192.0.2.1'), at(4, 'fail from 192.0.2.1')])).toEqual([]);
    const ban = feedAll(e, [at(5, 'fail from 192.0.2.1')]);
    expect(ban.map((x) => x.type)).toEqual(['ban']);
    const unban = feedAll(e, [at(6, 'ok from 192.0.2.1')]);
    expect(unban).toHaveLength(1);
    expect(unban[0]).toMatchObject({ type: 'unban', hits: 0, duration: null, rule: 'r' });
    expect(unban[0]!.target.text).toBe('192.0.2.1');
    expect(e.stats()).toMatchObject({ good: 2, unbans: 1 });
  });

  it('widen6 counts every host of a /64 together and bans the /64', () => {
    const e = engine([rule({ widen6: 64 })]);
    const events = feedAll(e, [
      at(0, 'fail from 2001:db8:1:2::1'),
      at(1, 'fail from 2001:db8:1:2::2'),
      at(2, 'fail from 2001:db8:1:2:aaaa::3'),
    ]);
    expect(events.map((x) => x.target.text)).toEqual(['2001:db8:1:2::/64']);
  });

  it('IPv4-mapped and plain IPv4 are one attacker', () => {
    const e = engine([rule()]);
    const events = feedAll(e, [
      at(0, 'fail from ::ffff:192.0.2.1'),
      at(1, 'fail from 192.0.2.1'),
      at(2, 'fail from ::ffff:192.0.2.1'),
    ]);
    expect(events.map((x) => x.target.text)).toEqual(['192.0.2.1']);
  });
});

describe('Engine - never ban what must not be banned', () => {
  it('allowlist, ignoreNets and loopback are skipped and counted', () => {
    const e = engine([rule({ ignoreNets: ['198.51.100.0/24'] })], {
      allowlist: new Allowlist(['203.0.113.0/24']),
    });
    const lines = ['203.0.113.7', '198.51.100.7', '127.0.0.1', '::1'].flatMap((ip) =>
      [0, 1, 2].map((s) => at(s, `fail from ${ip}`)),
    );
    expect(feedAll(e, lines)).toEqual([]);
    expect(e.stats()).toMatchObject({ matched: 12, skipped: 12, bans: 0 });
  });

  it('with no lists configured, loopback and 0.0.0.0/8 are still never banned', () => {
    const e = engine([rule()]);
    const lines = ['127.0.0.5', '0.1.2.3', '::ffff:127.0.0.1', '192.0.2.1'].flatMap((ip) =>
      [0, 1, 2].map((s) => at(s, `fail from ${ip}`)),
    );
    expect(feedAll(e, lines).map((x) => x.target.text)).toEqual(['192.0.2.1']);
    expect(e.stats()).toMatchObject({ matched: 12, skipped: 9, bans: 1 });
  });

  it('an attacker-chosen user name with "from 127.0.0.1" bans the real address, never loopback', () => {
    const e = engine([builtinRule('sshd')]);
    const line = (s: number) =>
      at(
        s,
        `web1 sshd[1]: Failed password for invalid user x from 127.0.0.1 port 22 ssh2 from 192.0.2.66 port 40000 ssh2`,
      );
    const events = feedAll(e, [0, 1, 2, 3, 4].map(line));
    expect(events.map((x) => x.target.text)).toEqual(['192.0.2.66']);
    expect(e.stats().skipped).toBe(0);
  });

  it('with no lists, IPv6 whose banned range would hold :: or ::1 is never banned', () => {
    const ips = ['::1', '::', '::2', '0:0:0:1::5', '2001:db8::1'];
    const lines = ips.flatMap((ip) => [0, 1, 2].map((s) => at(s, `fail from ${ip}`)));
    // Widened to /64, ::2 bans ::/64, which holds ::1; the fourth address's /64 does not.
    const wide = feedAll(engine([rule({ widen6: 64 })]), lines).map((x) => x.target.text);
    expect(wide).toEqual(['0:0:0:1::/64', '2001:db8::/64']);
    const exact = feedAll(engine([rule()]), lines).map((x) => x.target.text);
    expect(exact).toEqual(['::2', '::1:0:0:0:5', '2001:db8::1']);
  });

  it('an oversized line is counted and not matched', () => {
    const e = engine([rule()], { maxLineLength: 100 });
    expect(e.feed({ text: `fail from 192.0.2.1${' '.repeat(200)}`, source: 's' })).toEqual([]);
    expect(e.stats()).toMatchObject({ oversized: 1, matched: 0 });
  });
});

describe('Engine - bounded memory', () => {
  it('caps tracked pairs, evicts the least recently seen and counts evictions', () => {
    const e = engine([rule({ maxretry: 2 })], { maxTracked: 4 });
    // 192.0.2.1 fails once, then 10 other addresses pass by; .1 is evicted, so its second failure
    // starts a new count and does not ban.
    e.feed(at(0, 'fail from 192.0.2.1'));
    for (let i = 10; i < 20; i++) e.feed(at(1, `fail from 192.0.2.${i}`));
    expect(e.feed(at(2, 'fail from 192.0.2.1'))).toEqual([]);
    const s = e.stats();
    expect(s.tracked).toBeLessThanOrEqual(4);
    expect(s.evictions).toBeGreaterThan(0);
  });

  it('an address seen recently survives a flood of new ones', () => {
    const e = engine([rule({ maxretry: 12, findtime: 3600 })], { maxTracked: 4 });
    e.feed(at(0, 'fail from 192.0.2.1'));
    for (let i = 0; i < 10; i++) {
      e.feed(at(1, `fail from 198.51.100.${i}`));
      e.feed(at(1, 'fail from 192.0.2.1'));
    }
    // Its 12th failure bans only if none of the 11 before was forgotten.
    const events = e.feed(at(2, 'fail from 192.0.2.1'));
    expect(events.map((x) => [x.target.text, x.hits])).toEqual([['192.0.2.1', 12]]);
    expect(e.stats().evictions).toBeGreaterThan(0);
  });

  it('a million distinct addresses stay within the cap', () => {
    const e = engine([rule()], { maxTracked: 10_000 });
    const line = { text: '', source: 's' };
    for (let i = 0; i < 1_000_000; i++) {
      line.text = `fail from 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      e.feed(line);
    }
    const s = e.stats();
    expect(s.tracked).toBeLessThanOrEqual(10_000);
    expect(s.evictions).toBeGreaterThanOrEqual(1_000_000 - 10_000);
  });
});

describe('Engine - sources', () => {
  it("a rule reads only its sources (exact names and globs); '[]' reads all", () => {
    const e = engine([
      rule({ name: 'a', sources: ['/var/log/*.log'] }),
      rule({ name: 'b', sources: ['journald'] }),
      rule({ name: 'c' }),
    ]);
    const seen = (source: string) => {
      const names = new Set<string>();
      for (let i = 0; i < 3; i++)
        for (const ev of e.feed({ text: `fail from 192.0.2.${source.length}`, source })) names.add(ev.rule);
      return [...names].sort();
    };
    expect(seen('/var/log/auth.log')).toEqual(['a', 'c']);
    expect(seen('journald')).toEqual(['b', 'c']);
    expect(seen('/var/log/sub/x.log')).toEqual(['c']);
  });
});

describe('Engine - below-threshold hook (fleet-wide counting)', () => {
  const lines = (ip: string, n: number, from = 0) =>
    Array.from({ length: n }, (_, i) => at(from + i, `fail from ${ip}`));

  it('reports each counted failure below maxretry for rules with a fleet threshold, none at the ban', () => {
    const hits: Array<[string, string, number]> = [];
    const e = engine([rule({ fleet: { maxretry: 10, findtime: 3600 } })], {
      onBelowThreshold: (r, ip, t) => hits.push([r, ip, t]),
    });
    const events = feedAll(e, lines('198.51.100.7', 3));
    expect(events.map((ev) => ev.type)).toEqual(['ban']);
    expect(hits).toEqual([
      ['r', '198.51.100.7', T0],
      ['r', '198.51.100.7', T0 + 1000],
    ]);
    // While banned, further failures are neither counted nor reported.
    feedAll(e, lines('198.51.100.7', 2, 5));
    expect(hits).toHaveLength(2);
  });

  it('reports the tracked key: an IPv6 address widened to its /64', () => {
    const hits: string[] = [];
    const e = engine([rule({ widen6: 64, fleet: { maxretry: 10, findtime: 3600 } })], {
      onBelowThreshold: (_r, ip) => hits.push(ip),
    });
    feedAll(e, lines('2001:db8:1:2::99', 1));
    expect(hits).toEqual(['2001:db8:1:2::/64']);
  });

  it('stays silent for rules without a fleet threshold and for allowlisted addresses', () => {
    const hits: string[] = [];
    const e = engine(
      [rule(), rule({ name: 'f', fleet: { maxretry: 10, findtime: 3600 }, patterns: ['^bad from <HOST>$'] })],
      { onBelowThreshold: (_r, ip) => hits.push(ip), allowlist: new Allowlist(['192.0.2.0/24']) },
    );
    feedAll(e, lines('198.51.100.7', 2));
    feedAll(e, [at(10, 'bad from 192.0.2.5')]);
    expect(hits).toEqual([]);
    feedAll(e, [at(11, 'bad from 198.51.100.8')]);
    expect(hits).toEqual(['198.51.100.8']);
  });
});

/** Feeds each line with the mask forEachLine would give it (the literals it holds, whole line). */
function feedMasked(e: Engine, lines: Array<{ text: string; source: string }>): DetectEvent[] {
  const lits = e.prefilterLiterals()!;
  return lines.flatMap((l) =>
    e.feed(
      l,
      lits.reduce((m, lit, k) => (l.text.includes(lit) ? m | (1 << k) : m), 0),
    ),
  );
}

describe('Engine - literal masks from the reader', () => {
  it('a rule none of whose literals the line holds is not run; without a mask every rule is', () => {
    const a = rule({ name: 'a', patterns: ['^alpha fail from <HOST>$'], good: [], maxretry: 1 });
    const b = rule({ name: 'b', patterns: ['^beta fail from <HOST>$'], good: [], maxretry: 1 });
    const e = engine([a, b], { ignoreSources: true });
    const lits = e.prefilterLiterals()!;
    const bit = (l: string) => 1 << lits.indexOf(l);
    expect(lits).toEqual(['alpha fail from ', 'beta fail from ']);
    // A wrong mask shows the rule was skipped on the mask alone.
    expect(e.feed(at(0, 'alpha fail from 192.0.2.1'), bit('beta fail from '))).toEqual([]);
    expect(e.feed(at(1, 'alpha fail from 192.0.2.1'), bit('alpha fail from ')).map((x) => x.rule)).toEqual([
      'a',
    ]);
    expect(e.feed(at(2, 'beta fail from 192.0.2.2')).map((x) => x.rule)).toEqual(['b']);
  });

  it('a rule trusts the mask only for literals no timestamp can hold: the answers equal searching again', () => {
    // `21T` is only in the ISO stamp, which the rule never reads: its lines must not match; `fail`
    // starts past any stamp, so the mask alone lets its rule run.
    const specs = [
      rule({ name: 'stamp', prefilter: ['21T'] }),
      rule({ name: 'plain', prefilter: ['fail'], patterns: ['^fail from <HOST>$', '^failed from <HOST>$'] }),
    ];
    const lines = [0, 1, 2, 3, 4].flatMap((s) => [
      at(s, 'fail from 192.0.2.1'),
      at(s, 'failed from 192.0.2.2'),
      at(s, 'ok from 192.0.2.3'),
    ]);
    const masked = engine(specs, { ignoreSources: true });
    const plain = engine(specs, { ignoreSources: true });
    const events = feedMasked(masked, lines);
    expect(events.map((ev) => `${ev.rule} ${ev.target.text}`)).toEqual([
      'plain 192.0.2.1',
      'plain 192.0.2.2',
    ]);
    expect(events).toEqual(feedAll(plain, lines));
    expect(masked.ruleMatchCounts()).toEqual([
      { rule: 'stamp', matches: 0 },
      { rule: 'plain', matches: 10 },
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { Allowlist } from '../../src/core/allowlist.js';
import type { Decision } from '../../src/core/decision.js';
import { Policy, type PolicyContext } from '../../src/hub/policy.js';
import { NodeRateLimiter } from '../../src/hub/rate-limit.js';

const NOW = 1_700_000_000_000;

function ctx(over: Partial<PolicyContext> = {}): PolicyContext {
  return { now: NOW, allowlist: new Allowlist(), active: () => undefined, previousBans: () => 0, ...over };
}

function report(target: string, over: Record<string, unknown> = {}) {
  return { target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: NOW, ...over };
}

function activeBan(target: string, expiresAt: number | null): Decision {
  return {
    id: 'x',
    seq: 1,
    action: 'ban',
    target,
    family: 4,
    duration: 600,
    expiresAt,
    reason: '',
    rule: 'sshd',
    origin: 'web1',
    createdAt: NOW - 1000,
    set: 'blocklist',
  };
}

describe('policy', () => {
  it('a valid report becomes a ban with the rule duration, canonical target and origin', () => {
    const v = new Policy().evaluate('web1', report('::ffff:192.0.2.7'), ctx());
    expect(v.kind).toBe('ban');
    if (v.kind !== 'ban') return;
    expect(v.input).toMatchObject({
      action: 'ban',
      target: '192.0.2.7',
      family: 4,
      duration: 600,
      expiresAt: NOW + 600_000,
      origin: 'web1',
      rule: 'sshd',
      set: 'blocklist',
      reason: 'sshd: 5 hits',
    });
    expect(v.extends).toBe(false);
  });

  it('a report with no duration gets the default bantime; null means permanent', () => {
    const p = new Policy({ bantime: 120 });
    const { duration, ...noDuration } = report('192.0.2.1');
    const a = p.evaluate('web1', noDuration, ctx());
    const b = p.evaluate('web1', report('192.0.2.2', { duration: null }), ctx());
    expect(a.kind === 'ban' && a.input.duration).toBe(120);
    expect(b.kind === 'ban' && b.input).toMatchObject({ duration: null, expiresAt: null });
  });

  it('an allowlisted address is refused, whatever range covers it', () => {
    const allow = new Allowlist(['198.51.100.0/24', '2001:db8::/32']);
    const p = new Policy();
    for (const t of ['198.51.100.9', '198.51.0.0/16', '2001:db8::5']) {
      const v = p.evaluate('web1', report(t), ctx({ allowlist: allow }));
      expect(v).toMatchObject({ kind: 'refused', reason: 'allowlisted' });
    }
  });

  it('loopback, unspecified and too-broad ranges are refused as unbannable', () => {
    const p = new Policy();
    for (const t of ['127.0.0.1', '::1', '0.0.0.0', '10.0.0.0/8', '2001::/16']) {
      expect(p.evaluate('web1', report(t), ctx())).toMatchObject({ kind: 'refused', reason: 'unbannable' });
    }
  });

  it('hostile or malformed bodies are refused as invalid, naming the field', () => {
    const p = new Policy();
    const cases: Array<[unknown, RegExp]> = [
      [null, /not an object/],
      [{ target: 5 }, /report.target/],
      [report('not-an-ip\u0000'), /report.target/],
      [report('192.0.2.1', { set: 'a/b' }), /report.set/],
      [report('192.0.2.1', { duration: -5 }), /report.duration/],
      [report('192.0.2.1', { duration: 'forever' }), /report.duration/],
    ];
    for (const [body, msg] of cases) {
      const v = p.evaluate('web1', body, ctx());
      expect(v.kind).toBe('refused');
      if (v.kind === 'refused') {
        expect(v.reason).toBe('invalid');
        expect(v.message).toMatch(msg);
      }
    }
  });

  it('escalates by the multiplier for every earlier ban anywhere in the fleet, up to the cap', () => {
    const p = new Policy({ multiplier: 3, maxBantime: 5000 });
    const dur = (prev: number) => {
      const v = p.evaluate('web2', report('192.0.2.1', { duration: 100 }), ctx({ previousBans: () => prev }));
      return v.kind === 'ban' ? v.input.duration : undefined;
    };
    expect([dur(0), dur(1), dur(2), dur(3), dur(10)]).toEqual([100, 300, 900, 2700, 5000]);
    expect(p.escalate(10_000, 2)).toBe(10_000); // a rule's own bantime above the cap is kept
    expect(p.escalate(null, 5)).toBeNull();
    expect(new Policy({ maxBantime: null }).escalate(60, 2)).toBe(240);
  });

  it('the same address reported by ten nodes while banned is one decision', () => {
    const p = new Policy();
    let active: Decision | undefined;
    const verdicts = Array.from({ length: 10 }, (_, i) => {
      const v = p.evaluate(`web${i}`, report('192.0.2.1'), ctx({ now: NOW + i * 100, active: () => active }));
      if (v.kind === 'ban') active = activeBan('192.0.2.1', v.input.expiresAt);
      return v.kind;
    });
    expect(verdicts).toEqual(['ban', ...Array(9).fill('duplicate')]);
  });

  it('a clearly longer ban extends one in force; a permanent ban is never extended', () => {
    const p = new Policy();
    const existing = activeBan('192.0.2.1', NOW + 600_000);
    const longer = p.evaluate(
      'web2',
      report('192.0.2.1', { duration: 86400 }),
      ctx({ active: () => existing }),
    );
    expect(longer).toMatchObject({ kind: 'ban', extends: true });
    const perm = activeBan('192.0.2.1', null);
    const v = p.evaluate('web2', report('192.0.2.1', { duration: null }), ctx({ active: () => perm }));
    expect(v.kind).toBe('duplicate');
  });

  it('a flooding node is rate limited while another node still gets its bans', () => {
    const p = new Policy({ rateBurst: 5, ratePerMinute: 60 });
    const kinds = Array.from(
      { length: 8 },
      (_, i) => p.evaluate('bad', report(`203.0.113.${i + 1}`), ctx()).kind,
    );
    expect(kinds).toEqual([...Array(5).fill('ban'), ...Array(3).fill('refused')]);
    expect(p.evaluate('bad', report('203.0.113.50'), ctx())).toMatchObject({ reason: 'rate-limited' });
    expect(p.evaluate('good', report('203.0.113.60'), ctx()).kind).toBe('ban');
    // One token per second refills.
    expect(p.evaluate('bad', report('203.0.113.70'), ctx({ now: NOW + 1000 })).kind).toBe('ban');
  });

  it('an operator ban skips escalation but not the allowlist', () => {
    const p = new Policy();
    const allow = new Allowlist(['192.0.2.0/24']);
    expect(() => p.manual({ target: '192.0.2.5' }, allow, NOW)).toThrow(/allowlisted/);
    expect(() => p.manual({ target: 'nope' }, allow, NOW)).toThrow(
      expect.objectContaining({ code: 'E_ADDRESS' }),
    );
    expect(p.manual({ target: '2001:db8::/64', duration: 60 }, allow, NOW)).toMatchObject({
      target: '2001:db8::/64',
      family: 6,
      duration: 60,
      expiresAt: NOW + 60_000,
      rule: 'manual',
      origin: 'operator',
    });
  });
});

describe('node rate limiter', () => {
  it('refills continuously up to the burst and never above it', () => {
    const r = new NodeRateLimiter(2, 60);
    expect([r.take('a', 0), r.take('a', 0), r.take('a', 0)]).toEqual([true, true, false]);
    expect(r.take('a', 999)).toBe(false);
    expect(r.take('a', 1000)).toBe(true);
    expect([r.take('a', 1e9), r.take('a', 1e9), r.take('a', 1e9)]).toEqual([true, true, false]);
  });

  it('a report duration too long for an exact expiry is invalid; escalation past it is permanent', () => {
    // Found by test/fuzz/trust.test.ts (seed 200285774): 1.8e305 s gave an expiry of Infinity.
    const p = new Policy({ maxBantime: null });
    expect(p.evaluate('web1', report('192.0.2.7', { duration: 1.797693134862316e305 }), ctx())).toMatchObject(
      {
        kind: 'refused',
        reason: 'invalid',
      },
    );
    const v = p.evaluate('web1', report('192.0.2.8', { duration: 1e9 }), ctx({ previousBans: () => 20 }));
    expect(v).toMatchObject({ kind: 'ban', input: { duration: null, expiresAt: null } });
  });
});

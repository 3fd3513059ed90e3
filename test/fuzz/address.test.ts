import { BlockList, isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  contains,
  formatIPv4,
  formatIPv6,
  parseIPv4,
  parseIPv6,
  parseTarget,
  type Target,
  tryParseTarget,
} from '../../src/core/address.js';
import { family, refusedWith, textFrom, timeout } from './harness.js';

// Addresses and CIDR ranges against node:net as the oracle (isIP, BlockList). Documented
// differences, kept as assertions: zones (`%eth0`) are refused, IPv4-mapped IPv6 becomes IPv4.
const f = family('address');

const octet = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  // Leading zeros: node and rampart both refuse them (some libcs read them as octal).
  fc
    .integer({ min: 0, max: 255 })
    .map((n) => `0${n}`),
  fc.integer({ min: 256, max: 999 }).map(String),
);
const v4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const group = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), fc.boolean(), fc.integer({ min: 0, max: 2 }))
  .map(([n, upper, pad]) => {
    const h = n.toString(16).padStart(pad === 2 ? 4 : 1, '0');
    return upper ? h.toUpperCase() : h;
  });
/** IPv6 text: 8 groups with a random run compressed, an optional dotted tail. */
const v6 = fc
  .tuple(
    fc.array(group, { minLength: 8, maxLength: 8 }),
    fc.integer({ min: 0, max: 8 }),
    fc.integer({ min: 0, max: 8 }),
    fc.option(v4, { freq: 4 }),
    fc.constantFrom('', '', '', '::ffff:', '::'),
  )
  .map(([groups, at, len, tail, head]) => {
    const g = tail === null ? groups : groups.slice(0, 6);
    const from = Math.min(at, g.length);
    const to = Math.min(g.length, from + len);
    const body = len > 0 ? `${g.slice(0, from).join(':')}::${g.slice(to).join(':')}` : g.join(':');
    if (head === '::ffff:' && tail !== null) return `::ffff:${tail}`;
    if (head === '::') return `::${g.slice(0, 2).join(':')}`;
    return tail === null ? body : `${body}:${tail}`;
  });
const zone = fc.constantFrom('%eth0', '%1', '%', '%lo');
const address = fc.oneof(
  { weight: 3, arbitrary: v4 },
  { weight: 4, arbitrary: v6 },
  { weight: 1, arbitrary: fc.tuple(v6, zone).map(([a, z]) => a + z) },
  { weight: 2, arbitrary: textFrom('0123456789abcdefABCDEF:.%', 46) },
);
const prefix = fc.oneof(fc.integer({ min: 0, max: 129 }).map(String), textFrom('0123456789 -x', 4));
const withPrefix = fc
  .tuple(address, fc.option(prefix, { freq: 2 }))
  .map(([a, p]) => (p === null ? a : `${a}/${p}`));

function oracleFamily(text: string): 'ipv4' | 'ipv6' {
  return isIP(text) === 4 ? 'ipv4' : 'ipv6';
}

function familyOf(t: Target): 'ipv4' | 'ipv6' {
  return t.family === 4 ? 'ipv4' : 'ipv6';
}

function textOf(t: Target, value: bigint): string {
  return t.family === 4 ? formatIPv4(Number(value)) : formatIPv6(value);
}

describe('fuzz: addresses and CIDR', () => {
  it(
    'a bare address parses exactly when node:net.isIP accepts it (zones excepted), to the same address',
    () => {
      f.prop(
        'address-vs-isIP',
        address,
        (raw) => {
          const t = refusedWith(['E_ADDRESS'], () => parseTarget(raw));
          // parseTarget trims (documented): compare with the trimmed text.
          const s = raw.trim();
          const oracle = isIP(s);
          if (s.includes('%')) {
            // Documented: a zone names an interface of one machine, never a fleet-wide target.
            expect(t).toBeUndefined();
            return;
          }
          expect(t !== undefined).toBe(oracle !== 0);
          if (!t) return;
          expect(t.prefix).toBe(t.family === 4 ? 32 : 128);
          const bl = new BlockList();
          bl.addAddress(s, oracleFamily(s));
          expect(bl.check(t.text, familyOf(t))).toBe(true);
          // A neighbour is a different address: the value was kept, not approximated.
          const max = t.family === 4 ? 0xffffffffn : (1n << 128n) - 1n;
          const other = textOf(t, t.first === max ? t.first - 1n : t.first + 1n);
          expect(bl.check(other, familyOf(t))).toBe(false);
          // IPv4-mapped IPv6 becomes IPv4; nothing else changes family.
          if (t.family === 4 && oracle === 6) expect(s.toLowerCase()).toMatch(/::ffff:|:ffff:/);
          if (oracle === 4) expect(t.family).toBe(4);
        },
        { runs: 40_000, boundMs: 50 },
      );
    },
    timeout(10),
  );

  it(
    'a CIDR covers what node:net.BlockList.addSubnet covers, host bits masked',
    () => {
      f.prop(
        'cidr-vs-blocklist',
        withPrefix,
        (raw) => {
          const warnings: string[] = [];
          const t = refusedWith(['E_ADDRESS'], () =>
            parseTarget(raw, { onWarning: (w) => warnings.push(w) }),
          );
          const s = raw.trim();
          const slash = s.indexOf('/');
          if (slash < 0 || !t) return;
          const addr = s.slice(0, slash);
          const p = s.slice(slash + 1);
          expect(isIP(addr)).not.toBe(0);
          expect(p).toMatch(/^\d{1,3}$/);
          const bl = new BlockList();
          bl.addSubnet(addr, Number(p), oracleFamily(addr));
          const fam = familyOf(t);
          expect(bl.check(textOf(t, t.first), fam)).toBe(true);
          expect(bl.check(textOf(t, t.last), fam)).toBe(true);
          const max = t.family === 4 ? 0xffffffffn : (1n << 128n) - 1n;
          if (t.first > 0n) expect(bl.check(textOf(t, t.first - 1n), fam)).toBe(false);
          if (t.last < max) expect(bl.check(textOf(t, t.last + 1n), fam)).toBe(false);
          // A warning is given exactly when host bits were set.
          const exact = refusedWith(['E_ADDRESS'], () => parseTarget(raw, { hostBits: 'reject' }));
          expect(exact === undefined).toBe(warnings.length > 0);
        },
        { runs: 40_000, boundMs: 50 },
      );
    },
    timeout(10),
  );

  it(
    'normalising is idempotent and the text round-trips through the low-level parsers',
    () => {
      f.prop(
        'normalise-idempotent',
        fc.oneof(withPrefix, fc.string({ unit: 'binary', maxLength: 64 })),
        (s) => {
          const t = tryParseTarget(s);
          if (!t) return;
          const again = parseTarget(t.text);
          expect(again).toEqual(t);
          expect(contains(t, again) && contains(again, t)).toBe(true);
          const host = t.text.split('/')[0]!;
          if (t.family === 4) expect(formatIPv4(parseIPv4(host)!)).toBe(host);
          else expect(formatIPv6(parseIPv6(host)!)).toBe(host);
          expect(t.first <= t.last).toBe(true);
        },
        { runs: 30_000, boundMs: 50 },
      );
    },
    timeout(10),
  );
});

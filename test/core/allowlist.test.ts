import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { formatIPv4, parseTarget } from '../../src/core/address.js';
import { Allowlist } from '../../src/core/allowlist.js';

describe('allowlist', () => {
  it('matches hosts and ranges that overlap an entry, for both families', () => {
    const a = new Allowlist(['198.51.100.0/24', '203.0.113.7', '2001:db8:aa::/48']);
    expect(a.match(parseTarget('198.51.100.200'))).toBe('198.51.100.0/24');
    expect(a.match(parseTarget('203.0.113.7'))).toBe('203.0.113.7');
    expect(a.match(parseTarget('203.0.113.8'))).toBeUndefined();
    expect(a.match(parseTarget('203.0.113.0/24'))).toBe('203.0.113.7');
    expect(a.match(parseTarget('2001:db8:aa:1::1'))).toBe('2001:db8:aa::/48');
    expect(a.match(parseTarget('2001:db8:ab::1'))).toBeUndefined();
    // An IPv4 entry never covers an IPv6 address with the same numeric value.
    expect(a.match(parseTarget('::c633:6401'))).toBeUndefined();
    expect(a.match(parseTarget('::ffff:198.51.100.1'))).toBe('198.51.100.0/24');
  });

  it('adds and removes entries', () => {
    const a = new Allowlist();
    a.add('192.0.2.0/24');
    expect(a.has(parseTarget('192.0.2.1'))).toBe(true);
    expect(a.remove('192.0.2.0/24')).toBe(true);
    expect(a.remove('192.0.2.0/24')).toBe(false);
    expect(a.has(parseTarget('192.0.2.1'))).toBe(false);
    expect(a.size).toBe(0);
  });

  it('agrees with node:net BlockList on 10,000 random entries and 20,000 probes', () => {
    // xorshift32: a linear congruential generator's correlated draws cover the space unevenly.
    let seed = 0x9e3779b9;
    const rnd = () => {
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed;
    };
    const a = new Allowlist();
    const b = new BlockList();
    const entries: string[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const prefix = 20 + (rnd() % 13);
      const t = parseTarget(`${formatIPv4(rnd())}/${prefix}`, { onWarning: () => {} });
      entries.push(t.text);
      firsts.push(Number(t.first));
      b.addSubnet(formatIPv4(Number(t.first)), prefix, 'ipv4');
    }
    for (const e of entries) a.add(e);
    let hits = 0;
    for (let i = 0; i < 20_000; i++) {
      // Half the probes land near an entry's edges (inside or just outside), half anywhere.
      const near = firsts[rnd() % firsts.length]! + (rnd() % 8192) - 64;
      const ip = formatIPv4(i % 2 ? rnd() : near >>> 0);
      const ours = a.has(parseTarget(ip));
      expect(ours).toBe(b.check(ip, 'ipv4'));
      if (ours) hits++;
    }
    // Both outcomes must have been exercised for the comparison to mean anything.
    expect(hits).toBeGreaterThan(500);
    expect(hits).toBeLessThan(19_000);
  });
});

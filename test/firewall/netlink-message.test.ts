import { describe, expect, it } from 'vitest';
import { makeTarget, ParsedHost, parseTarget, type Target } from '../../src/core/address.js';
import { selfConsistent, writeAddress } from '../../src/firewall/netlink-message.js';

describe('selfConsistent: which targets the netlink encoders may encode from their numbers', () => {
  it('trusts what parseTarget made and checks every other target', () => {
    for (const text of [
      '192.0.2.7',
      '2001:db8:1:2::1',
      '2001:DB8::0:1',
      '198.51.100.0/24',
      '2001:db8::/48',
    ]) {
      expect(selfConsistent(parseTarget(text)), text).toBe(true);
    }
    expect(selfConsistent(makeTarget(6, 0x20010db8n << 96n, 32))).toBe(true);
    // Built by hand: the same fields, agreeing or not.
    const v4: Target = { family: 4, prefix: 32, first: 0xc0000207n, last: 0xc0000207n, text: '192.0.2.7' };
    expect(selfConsistent(v4)).toBe(true);
    expect(selfConsistent({ ...v4, text: '192.0.2.8' })).toBe(false);
    const v6 = parseTarget('2001:db8::1');
    // A copy is a plain object again, so its text is read anew.
    expect(selfConsistent({ ...v6 })).toBe(true);
    expect(selfConsistent({ ...v6, text: '2001:db8::2' })).toBe(false);
    expect(selfConsistent({ ...v6, last: v6.last + 1n })).toBe(false);
    expect(selfConsistent({ ...v6, text: 'not an address' })).toBe(false);
  });

  it('writes an IPv6 host parsed on the fast path in network order', () => {
    const t = parseTarget('2001:db8:a:b::ff01');
    expect(t).toBeInstanceOf(ParsedHost);
    const out = Buffer.alloc(18, 0xee);
    writeAddress(out, 1, t);
    expect(out.toString('hex')).toBe('ee20010db8000a000b000000000000ff01ee');
    const four = Buffer.alloc(4);
    writeAddress(four, 0, parseTarget('198.51.100.9'));
    expect([...four]).toEqual([198, 51, 100, 9]);
  });
});

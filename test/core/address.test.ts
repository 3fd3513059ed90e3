import { describe, expect, it } from 'vitest';
import {
  assertBannable,
  contains,
  formatIPv6Words,
  isCanonicalIPv6Words,
  ParsedHost,
  parseIPv6,
  parseIPv6Words,
  parseTarget,
  tryParseTarget,
  widen,
  writeBigEndian,
} from '../../src/core/address.js';
import { Allowlist } from '../../src/core/allowlist.js';
import { seededRandom } from '../helpers/seeded-random.js';

describe('addresses', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7', 4, 32],
    [' 198.51.100.9 ', '198.51.100.9', 4, 32],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', 6, 128],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', 6, 128],
    ['2001:0db8:0000:0000:0000:0000:0000:0000/32', '2001:db8::/32', 6, 32],
    ['::ffff:192.0.2.1', '192.0.2.1', 4, 32],
    ['::ffff:c000:0201', '192.0.2.1', 4, 32],
    ['::ffff:198.51.100.0/120', '198.51.100.0/24', 4, 24],
    ['203.0.113.0/24', '203.0.113.0/24', 4, 24],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6', 6, 128],
    ['2001:db8::1:0:0:0:1', '2001:db8:0:1::1', 6, 128],
  ])('normalises %s to %s', (input, text, family, prefix) => {
    const t = parseTarget(input);
    expect(t.text).toBe(text);
    expect(t.family).toBe(family);
    expect(t.prefix).toBe(prefix);
  });

  it.each([
    '',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '01.2.3.4',
    '1.2.3.4 ',
    'example.com',
    '2001:db8::1::2',
    '2001:db8:::1',
    'fe80::1%eth0',
    '1.2.3.4/33',
    '2001:db8::/129',
    '1.2.3.4/-1',
    '1.2.3.4/',
    '\u0000\u00ff',
    '12345::',
    ':',
  ])('rejects %j with a clear E_ADDRESS error', (input) => {
    // ' 1.2.3.4 ' is trimmed, but an embedded space inside the text is not an address.
    if (input === '1.2.3.4 ') return expect(parseTarget(input).text).toBe('1.2.3.4');
    expect(() => parseTarget(input)).toThrow(expect.objectContaining({ code: 'E_ADDRESS' }));
    expect(tryParseTarget(input)).toBeNull();
  });

  it('a plain IPv4 host (the fast path) is the same target as the general path gives', () => {
    for (const text of ['192.0.2.7', '0.0.0.0', '255.255.255.255', '198.51.100.10']) {
      const t = parseTarget(text);
      expect(t).toEqual(parseTarget(`${text}/32`));
      expect(t).toEqual(parseTarget(` ${text} `));
      expect(Object.keys(t)).toEqual(Object.keys(parseTarget('2001:db8::1')));
    }
    for (const bad of ['192.0.2.07', '192.0.2.256', '192.0.2', '192.0.2.7.', '+192.0.2.7'])
      expect(() => parseTarget(bad)).toThrow(/not an IPv4 or IPv6 address/);
  });

  it('a plain IPv6 host (the fast path) is the same target as the general path gives', () => {
    // Random hosts with runs of zero groups, upper case and leading zeros, each written the
    // canonical way and a long way; the general path is the /128 form (it skips the fast path).
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let k = 0; k < 2000; k++) {
      const groups = Array.from({ length: 8 }, () => (rnd() % 3 === 0 ? 0 : rnd() & 0xffff));
      if (k % 5 === 0) groups[0] = 0;
      const long = groups.map((g) => g.toString(16).padStart(k % 2 ? 4 : 1, '0')).join(':');
      const text = k % 3 === 0 ? long.toUpperCase() : long;
      const fast = parseTarget(text);
      const general = parseTarget(`${text}/128`);
      expect(fast).toEqual(general);
      expect(parseTarget(fast.text)).toEqual(general);
      expect(Object.keys(fast)).toEqual(Object.keys(general));
    }
    for (const [input, text] of [
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['::ffff:c000:201', '192.0.2.1'],
      ['0:0:0:0:0:ffff:c000:201', '192.0.2.1'],
      ['::fffe:c000:201', '::fffe:c000:201'],
      ['2001:db8::0:1', '2001:db8::1'],
    ]) {
      expect(parseTarget(input!).text).toBe(text);
    }
    for (const bad of ['2001:db8::1::', '2001:db8:0:0:0:0:0:0:1', '2001:db8::12345', 'g::1', '2001:db8:']) {
      expect(() => parseTarget(bad)).toThrow(/not an IPv4 or IPv6 address/);
    }
  });

  it('writes values big-endian at any width, by words or by bytes', () => {
    const out = new Uint8Array(20).fill(0xee);
    writeBigEndian(0x20010db8_00000000_00000000_0000ff01n, out, 2, 16);
    expect(Buffer.from(out).toString('hex')).toBe('eeee20010db800000000000000000000ff01eeee');
    const four = new Uint8Array(4);
    writeBigEndian(0xc0000201n, four, 0, 4);
    expect([...four]).toEqual([192, 0, 2, 1]);
    const odd = new Uint8Array(3);
    writeBigEndian(0x0a0b0cn, odd, 0, 3);
    expect([...odd]).toEqual([10, 11, 12]);
    const top = new Uint8Array(16);
    writeBigEndian((1n << 128n) - 1n, top, 0, 16);
    expect(top.every((b) => b === 255)).toBe(true);
  });

  it('masks host bits with a warning, or refuses them when asked', () => {
    const warnings: string[] = [];
    expect(parseTarget('192.0.2.77/24', { onWarning: (w) => warnings.push(w) }).text).toBe('192.0.2.0/24');
    expect(warnings[0]).toMatch(/host bits.*192\.0\.2\.0\/24/);
    expect(() => parseTarget('2001:db8::1/64', { hostBits: 'reject' })).toThrow(
      /did you mean 2001:db8::\/64/,
    );
  });

  it('widens IPv6 hosts to /64 and leaves IPv4 alone', () => {
    expect(widen(parseTarget('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).text).toBe('2001:db8:1:2::/64');
    expect(widen(parseTarget('192.0.2.1')).text).toBe('192.0.2.1');
    expect(contains(parseTarget('2001:db8:1:2::/64'), parseTarget('2001:db8:1:2::9'))).toBe(true);
    expect(contains(parseTarget('192.0.2.0/24'), parseTarget('192.0.3.1'))).toBe(false);
  });

  it.each([
    ['0.0.0.0/0', /whole IPv4 internet/],
    ['::/0', /whole IPv6 internet/],
    ['10.0.0.0/8', /broader than \/16/],
    ['2001::/16', /broader than \/32/],
    ['127.0.0.1', /loopback/],
    ['127.8.0.0/16', /loopback/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['0.0.0.0', /unspecified/],
    ['::ffff:127.0.0.1', /loopback/],
  ])('never bans %s', (input, why) => {
    expect(() => assertBannable(parseTarget(input))).toThrow(why);
  });

  it('respects a configured minimum prefix and the allowlist', () => {
    expect(assertBannable(parseTarget('10.0.0.0/8'), { minPrefix4: 8 }).text).toBe('10.0.0.0/8');
    const allow = new Allowlist(['192.0.2.0/28', '2001:db8:ffff::/48']);
    const allowed = (t: ReturnType<typeof parseTarget>) => allow.match(t);
    expect(() => assertBannable(parseTarget('192.0.2.5'), { allowed })).toThrow(
      /allowlisted \(192\.0\.2\.0\/28\)/,
    );
    // A range that merely overlaps an allowlisted host would ban it too: refused.
    expect(() => assertBannable(parseTarget('192.0.2.0/24'), { allowed })).toThrow(/allowlisted/);
    expect(assertBannable(parseTarget('192.0.2.16'), { allowed }).text).toBe('192.0.2.16');
  });
});

describe('parseIPv6Words', () => {
  it('gives parseIPv6 value for every hex-group form, and declines the rest', () => {
    const next = seededRandom(7);
    const words = new Int32Array(4);
    const texts = [
      '::',
      '::1',
      '1::',
      'a:b:c:d:e:f:1:2',
      '2a01:db8::ff',
      'ABCD::',
      ':::',
      '1:::2',
      '1::2::3',
      ':1',
      '1:',
      '12345::',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '::ffff:192.0.2.1',
      'fe80::1%eth0',
      '',
      ':',
      'g::',
    ];
    for (let i = 0; i < 20_000; i++) {
      // Random group counts, widths, compression and stray characters.
      const n = 1 + Math.floor(next() * 9);
      const groups = Array.from({ length: n }, () =>
        Math.floor(next() * 0x10000)
          .toString(16)
          .slice(0, 1 + Math.floor(next() * 5)),
      );
      let t = groups.join(':');
      if (next() < 0.5) {
        const at = Math.floor(next() * (groups.length + 1));
        t = [...groups.slice(0, at), '', ...groups.slice(at)].join(':');
        if (at === 0 || at === groups.length) t = t.startsWith(':') ? `:${t}` : `${t}:`;
      }
      if (next() < 0.05) t = t.toUpperCase();
      if (next() < 0.05) t = `${t}${'.:x0'[Math.floor(next() * 4)]}`;
      texts.push(t);
    }
    for (const t of texts) {
      const v = parseIPv6(t);
      const ok = parseIPv6Words(t, words);
      if (ok) {
        const got = [...words].reduce((a, w) => (a << 32n) | BigInt(w >>> 0), 0n);
        expect(got, t).toBe(v);
      } else if (v !== null) {
        expect(t, 'declined only with a dotted tail').toContain('.');
      }
    }
  });
});

describe('isCanonicalIPv6Words', () => {
  it('says yes exactly when the text is what formatIPv6Words writes', () => {
    const next = seededRandom(11);
    const words = new Int32Array(4);
    const texts = [
      '::',
      '::1',
      '1::',
      '1:0:1:1:1:1:1:1',
      '1::1:1:1:1:1:1',
      '1:0:0:1::',
      '1::1:0:0:1',
      'a:0:0:b:0:0:c:d',
    ];
    for (let i = 0; i < 20_000; i++) {
      // Groups with runs of zeros (ties included), spelled canonically, long-hand, with leading
      // zeros, in upper case, or with `::` for a run other than the longest or for one zero.
      const groups = Array.from({ length: 8 }, () =>
        next() < 0.4 ? 0 : Math.floor(next() * 0x10000) >> (next() < 0.5 ? 8 : 0),
      );
      const hex = groups.map((g) => g.toString(16));
      const r = next();
      if (r < 0.15) texts.push(hex.join(':'));
      else if (r < 0.25) texts.push(groups.map((g) => g.toString(16).padStart(2, '0')).join(':'));
      else if (r < 0.3) texts.push(hex.join(':').toUpperCase());
      else if (r < 0.6) {
        // `::` over a zero run chosen at random (not always the longest).
        const zeroStarts = groups.flatMap((g, k) => (g === 0 && (k === 0 || groups[k - 1] !== 0) ? [k] : []));
        if (zeroStarts.length === 0) continue;
        const at = zeroStarts[Math.floor(next() * zeroStarts.length)]!;
        let end = at;
        while (end < 8 && groups[end] === 0) end++;
        texts.push(`${hex.slice(0, at).join(':')}::${hex.slice(end).join(':')}`);
      } else {
        words[0] = (groups[0]! << 16) | groups[1]!;
        words[1] = (groups[2]! << 16) | groups[3]!;
        words[2] = (groups[4]! << 16) | groups[5]!;
        words[3] = (groups[6]! << 16) | groups[7]!;
        texts.push(formatIPv6Words(words));
      }
    }
    let canonical = 0;
    for (const t of texts) {
      expect(parseIPv6Words(t, words), t).toBe(true);
      const expected = formatIPv6Words(words) === t;
      if (expected) canonical++;
      expect(isCanonicalIPv6Words(t, words), t).toBe(expected);
    }
    // Both answers were exercised many times.
    expect(canonical).toBeGreaterThan(5_000);
    expect(texts.length - canonical).toBeGreaterThan(5_000);
  });

  it('parseTarget keeps canonical text as given and rewrites the rest', () => {
    const canonical = '2001:db8:1:2::1';
    expect(parseTarget(canonical).text).toBe(canonical);
    expect(parseTarget('2001:DB8:1:2::1').text).toBe(canonical);
    expect(parseTarget('2001:db8:1:2:0:0:0:1').text).toBe(canonical);
    expect(parseTarget('2001:0db8:1:2::1').text).toBe(canonical);
    // Two runs of two zero groups: `::` goes on the first.
    expect(parseTarget('2001:db8:0:0:1::1').text).toBe('2001:db8::1:0:0:1');
    expect(parseTarget('2001:db8::1:0:0:1').text).toBe('2001:db8::1:0:0:1');
    expect(parseTarget('2001:db8:0:0:1::1').first).toBe(0x20010db8_00000000_00010000_00000001n);
    // Single hosts of either family come from the fast path as ParsedHost; ranges do not.
    expect(parseTarget(canonical)).toBeInstanceOf(ParsedHost);
    expect(parseTarget('192.0.2.1')).toBeInstanceOf(ParsedHost);
    expect(parseTarget('2001:db8::/32')).not.toBeInstanceOf(ParsedHost);
  });
});

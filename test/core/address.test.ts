import { describe, expect, it } from 'vitest';
import { assertBannable, contains, parseTarget, tryParseTarget, widen } from '../../src/core/address.js';
import { Allowlist } from '../../src/core/allowlist.js';

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

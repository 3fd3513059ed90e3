import { describe, expect, it } from 'vitest';
import { compileRule } from '../../src/detect/compile.js';
import { expandPlaceholders } from '../../src/detect/placeholders.js';
import { isLinear } from '../../src/detect/regex-safety.js';
import { testRule } from './rule-spec.js';

const rule = (patterns: string[]) => testRule(patterns, { name: 'placeholders' });

describe('placeholders - precise expansion', () => {
  it('an address followed by a port keeps the port out of the capture', () => {
    const r = compileRule(rule(['^x <HOST>(?::\\d+)?$', '^p <ADDR>:<ADDR>$']));
    const cases: Array<[string, string | undefined]> = [
      ['x 192.0.2.4:51380', '192.0.2.4'],
      ['x 192.0.2.4', '192.0.2.4'],
      ['x 2001:db8::1:51380', '2001:db8::1'],
      ['x [2001:db8::2]:22', '2001:db8::2'],
      ['x ::ffff:192.0.2.5', '192.0.2.5'],
      ['x 2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
      ['p [2001:db8::3]:[2001:db8::4]', '2001:db8::3'],
    ];
    for (const [line, ip] of cases) expect(r.test(line), line).toEqual({ kind: 'fail', ip, fields: {} });
  });

  it('host names, over-long octets and words are no match, never a piece of an address', () => {
    const r = compileRule(rule(['^x <HOST>(?::\\d+)?$', '^y <HOST> .*$']));
    for (const line of [
      'x host.example.com',
      'x 192.0.2.4567',
      'x 999.1.1.1',
      'y 192.0.2.4567 z',
      'x 12:30',
    ]) {
      expect(r.test(line).kind, line).toBe('none');
    }
  });

  it('every placeholder captures: the one that took part gives the address', () => {
    const r = compileRule(rule(['^y \\[(?:IPv6:<IP6>|<IP4>)\\]$', '^z (?:user <HOST>|peer <ADDR>) end$']));
    expect(r.test('y [IPv6:2001:db8::5]').ip).toBe('2001:db8::5');
    expect(r.test('y [192.0.2.7]').ip).toBe('192.0.2.7');
    expect(r.test('z peer 192.0.2.8 end').ip).toBe('192.0.2.8');
    expect(r.test('z user 192.0.2.9 end').ip).toBe('192.0.2.9');
    // The merged (engine) path agrees with pattern by pattern.
    const out = { ip: '', v4: -1 };
    expect(r.classify('z peer 192.0.2.8 end', out)).toBe('fail');
    expect(out.ip).toBe('192.0.2.8');
    expect(r.classify('y [IPv6:2001:db8::5]', out)).toBe('fail');
    expect(out.ip).toBe('2001:db8::5');
  });

  it('expansions stay linear-time compatible (no lookarounds, sizes V8 accepts)', () => {
    for (const tag of ['<HOST>', '<ADDR>', '<IP4>', '<IP6>', '{IP_NUMBER}']) {
      const { source } = expandPlaceholders(`^a (?:${tag}|b ${tag}) c ${tag}$`);
      expect(isLinear(source), `${tag}: ${source}`).toBe(true);
    }
  });
});

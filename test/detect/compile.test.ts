import { describe, expect, it } from 'vitest';
import { parseIPv6 } from '../../src/core/address.js';
import { RampartError } from '../../src/core/errors.js';
import {
  type CompiledRule,
  canonicalAddress,
  compileRule,
  type MatchOut,
  matchedText,
  V6_WORDS,
} from '../../src/detect/compile.js';
import { builtinRules } from '../../src/detect/rules-file.js';
import { testRule } from './rule-spec.js';

const rule = testRule;

describe('compileRule - placeholders', () => {
  it('<HOST>, <ADDR>, <IP4>, <IP6>, {IP_NUMBER} and named groups capture the address', () => {
    const cases: Array<[string, string, string]> = [
      ['^fail from <HOST>$', 'fail from 192.0.2.1', '192.0.2.1'],
      ['^fail from <HOST>$', 'fail from [2001:db8::1]', '2001:db8::1'],
      ['^fail from <ADDR> port', 'fail from 2001:DB8:0:0::7 port', '2001:db8::7'],
      ['^fail from <IP4>$', 'fail from 198.51.100.9', '198.51.100.9'],
      ['^fail from <IP6>$', 'fail from 2001:db8::9', '2001:db8::9'],
      ['^bad {IP_NUMBER} here', 'bad 203.0.113.4 here', '203.0.113.4'],
      ['^x (?<ip>\\S+) y', 'x 192.0.2.77 y', '192.0.2.77'],
      ['^x (?P<ip>\\S+) y', 'x 192.0.2.78 y', '192.0.2.78'],
      ['^x (?<ip4>\\S+) y', 'x 192.0.2.79 y', '192.0.2.79'],
    ];
    for (const [p, line, ip] of cases) {
      expect({ p, r: compileRule(rule([p])).test(line) }).toMatchObject({ p, r: { kind: 'fail', ip } });
    }
  });

  it('IPv4-mapped IPv6 is normalised to IPv4', () => {
    expect(compileRule(rule(['^from <HOST>$'])).test('from ::ffff:192.0.2.5').ip).toBe('192.0.2.5');
    expect(canonicalAddress('::FFFF:198.51.100.1')).toBe('198.51.100.1');
  });

  it('a host name where the address belongs is no match: DNS is never resolved', () => {
    const r = compileRule(rule(['^fail from <HOST>$']));
    expect(r.test('fail from evil.example.com').kind).toBe('none');
    expect(r.test('fail from 192.0.2.1.evil.example.com').kind).toBe('none');
    expect(r.test('fail from 300.1.1.1').kind).toBe('none');
  });

  it('a later pattern still gets its chance when the first captured a host name', () => {
    const r = compileRule(rule(['^fail from <HOST>', '^fail from \\S+ via <HOST>$']));
    expect(r.test('fail from host.example via 192.0.2.8')).toMatchObject({ kind: 'fail', ip: '192.0.2.8' });
  });

  it('other named groups are returned as fields', () => {
    const r = compileRule(rule(['^user (?<user>\\S+) from <HOST>$']));
    expect(r.test('user root from 192.0.2.1')).toEqual({
      kind: 'fail',
      ip: '192.0.2.1',
      fields: { user: 'root' },
    });
  });

  it('ignore patterns win over failures; good patterns forgive', () => {
    const r = compileRule(
      rule(['^fail from <HOST>'], { ignore: ['from 192\\.0\\.2\\.99'], good: ['^ok from <HOST>$'] }),
    );
    expect(r.test('fail from 192.0.2.99').kind).toBe('ignored');
    expect(r.test('fail from 192.0.2.1')).toMatchObject({ kind: 'fail', ip: '192.0.2.1' });
    expect(r.test('ok from 192.0.2.1')).toMatchObject({ kind: 'good', ip: '192.0.2.1' });
  });

  it('prefregex must match first and its <F-CONTENT> is what the patterns see', () => {
    const r = compileRule(
      rule(['^Failed for \\S+ from <HOST>$'], {
        prefregex: '^\\S+ sshd\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$',
      }),
    );
    expect(r.test('host sshd[1]: Failed for root from 192.0.2.3').ip).toBe('192.0.2.3');
    expect(r.test('host cron[1]: Failed for root from 192.0.2.3').kind).toBe('none');
  });
});

describe('compileRule - bad and dangerous patterns', () => {
  it('an invalid pattern is E_REGEX naming the rule and the pattern', () => {
    let err: unknown;
    try {
      compileRule(rule(['^ok <HOST>', '^broken (<HOST>']));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RampartError);
    expect((err as RampartError).code).toBe('E_REGEX');
    expect((err as Error).message).toContain('rule "test-rule"');
    expect((err as Error).message).toContain('patterns[1]');
    expect((err as Error).message).toContain('^broken (');
    // The user's own text and V8's reason, not the expanded placeholder regex.
    expect((err as Error).message).toContain('/^broken (<HOST>/: Unterminated group');
    expect((err as Error).message).not.toContain('(?<ip>');
  });

  it('a pattern without an address placeholder is refused', () => {
    expect(() => compileRule(rule(['^no address here$']))).toThrow(/no address placeholder/);
  });

  it('back-references are refused: nothing can stop them backtracking', () => {
    expect(() => compileRule(rule(['^(a+)+\\1 <HOST>$']))).toThrow(/linear time/);
  });

  it('lookarounds are refused when linear mode is required, accepted with a warning otherwise', () => {
    expect(() => compileRule(rule(['^(?!x)from <HOST>$']), { linear: 'require' })).toThrow(/linear time/);
    const warnings: string[] = [];
    const r = compileRule(rule(['^(?!x)from <HOST>$']), { onWarning: (m) => warnings.push(m) });
    expect(r.test('from 192.0.2.1').ip).toBe('192.0.2.1');
    expect(warnings).toHaveLength(1);
  });

  it(
    'a catastrophic user pattern ^(a+)+$ on "aaaa…!" returns instead of hanging',
    {
      timeout: 20_000,
    },
    () => {
      // Backtracking alone needs about 2^40 steps here; the linear fallback answers at once.
      const r = compileRule(rule(['^(a+)+$(?<ip>x)?', '^(a+)+ from <HOST>$']));
      expect(r.test(`${'a'.repeat(40)}!`).kind).toBe('none');
      expect(r.test(`${'a'.repeat(40)} from 192.0.2.1!`).kind).toBe('none');
    },
  );
});

describe('built-in rules on hostile input', () => {
  const rules = builtinRules({ aggressive: true }).map((s) => compileRule(s));
  const all = (text: string) => rules.map((r) => r.test(text));

  it('binary bytes and replacement characters neither crash nor match', () => {
    const junk = `web1 sshd[1]: Failed password for \u0000\u0001\ufffd\ud800 from \u0000 port 22 ssh2`;
    for (const r of all(junk)) expect(r.kind).toBe('none');
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('utf8');
    for (const r of all(bytes)) expect(r.kind).toBe('none');
  });

  it('a 1 MB line is handled without a hang and does not match', { timeout: 20_000 }, () => {
    const huge = `web1 sshd[1]: Failed password for ${'x from 192.0.2.1 port 22 '.repeat(42_000)}`;
    expect(huge.length).toBeGreaterThan(1_000_000);
    for (const r of all(huge)) expect(r.kind).toBe('none');
  });

  it('a user name containing "from 127.0.0.1" is not attributed to 127.0.0.1', () => {
    const line =
      'web1 sshd[1]: Failed password for invalid user x from 127.0.0.1 port 22 ssh2 from 203.0.113.50 port 4000 ssh2';
    const hits = all(line).filter((r) => r.kind === 'fail');
    expect(hits.map((h) => h.ip)).toEqual(['203.0.113.50']);
  });

  it('a rule of one pattern reads its address by group number as the pattern would by name', () => {
    const single = [
      ['^x (?:by <HOST>|from <ADDR>) y$'],
      ['x (?<user>\\S+) from <HOST>'],
      ['^(a)?(?<user>b)? <IP4> or <IP6>$'],
    ].map((patterns) => compileRule(testRule(patterns, { good: patterns })));
    const lines = [
      'x by 192.0.2.1 y',
      'x from 2001:db8::2 y',
      'x by host.example y',
      'x from [192.0.2.3] y',
      'pre x root from 203.0.113.9 post',
      'x root from host.example',
      'ab 192.0.2.4 or 2001:db8::5',
      ' 192.0.2.4 or 2001:db8::5',
    ];
    fastAgreesWithSlow(single, lines);
    expect(single[0]!.classify('x by 192.0.2.1 y', { ip: '' })).toBe('fail');
  });

  it('the merged fast path gives the same answer as pattern by pattern', () => {
    const lines = [
      'web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2',
      'web1 sshd[1]: Invalid user a from 2001:db8::1 port 2',
      'web1 sshd[1]: Invalid user a from host.example port 2',
      'web1 sshd[1]: Accepted password for bob from 192.0.2.2 port 22 ssh2',
      'web1 sshd[1]: Server listening on :: port 22.',
      'web1 sshd[1]: Invalid user a from 2001:DB8:0:0::7 port 2',
      'web1 sshd[1]: Invalid user a from ::ffff:c000:207 port 2',
      'web1 sshd[1]: Invalid user a from ::ffff:192.0.2.8 port 2',
    ];
    fastAgreesWithSlow(rules, lines);
  });
});

describe('compileRule - warm()', () => {
  it('leaves every built-in rule classifying its own sample lines as before', () => {
    const line = 'Failed password for invalid user u0 from 198.51.100.1 port 40000 ssh2';
    for (const spec of builtinRules()) {
      const cold = compileRule(spec);
      const warm = compileRule(spec);
      warm.warm();
      // Running the regexes on '' must leave no lastIndex or last-match state behind.
      for (const text of [line, `sshd[1]: ${line}`, 'nothing here']) {
        const a: MatchOut = { ip: '', v4: -1 };
        const b: MatchOut = { ip: '', v4: -1 };
        expect({ rule: spec.name, text, kind: warm.classify(text, b), ip: b.ip }).toEqual({
          rule: spec.name,
          text,
          kind: cold.classify(text, a),
          ip: a.ip,
        });
      }
    }
  });

  it('handles a rule with a prefregex, ignore and good patterns and no merged regex', () => {
    const r = compileRule(
      rule(['^fail from <HOST>$'], {
        prefregex: '^svc: <F-CONTENT>.+</F-CONTENT>$',
        ignore: ['^fail from 192\\.0\\.2\\.9$'],
        good: ['^ok from <HOST>$'],
      }),
    );
    r.warm();
    expect(r.test('svc: fail from 192.0.2.1')).toMatchObject({ kind: 'fail', ip: '192.0.2.1' });
    expect(r.test('svc: fail from 192.0.2.9').kind).toBe('ignored');
    expect(r.test('svc: ok from 192.0.2.2')).toMatchObject({ kind: 'good', ip: '192.0.2.2' });
  });
});

/** `classify` (the merged fast path, with and without an IPv6 words buffer) answers as `test` does. */
function fastAgreesWithSlow(compiled: CompiledRule[], lines: string[]): void {
  for (const r of compiled) {
    for (const l of lines) {
      const out = { ip: '' };
      const kind = r.classify(l, out);
      const slow = r.test(l);
      expect(kind).toBe(slow.kind);
      if (kind === 'fail' || kind === 'good') expect(out.ip).toBe(slow.ip);
      // With a words buffer, IPv6 comes back as words and its text is made only on demand.
      const fast: MatchOut = { ip: '', v6: new Int32Array(4) };
      expect(r.classify(l, fast)).toBe(slow.kind);
      if (kind !== 'fail' && kind !== 'good') continue;
      expect(matchedText(fast)).toBe(slow.ip);
      if (fast.v4 === V6_WORDS) {
        const v = parseIPv6(slow.ip!)!;
        expect([...fast.v6!]).toEqual(
          [0, 1, 2, 3].map((i) => Number((v >> BigInt(96 - 32 * i)) & 0xffffffffn) | 0),
        );
      } else {
        expect(fast.ip).toBe(slow.ip);
      }
    }
  }
}

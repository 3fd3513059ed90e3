import { describe, expect, it } from 'vitest';
import {
  anchorAfterHost,
  reduceNestedQuantifiers,
  translateRegex,
  UntranslatableRegex,
} from '../../src/compat/regex-translate.js';
import { parseRegexTree } from '../../src/compat/regex-tree.js';

const py = (s: string) => translateRegex(s, 'python');
const pl = (s: string) => translateRegex(s, 'perl');
const matches = (js: string, text: string) => new RegExp(js).test(text);

describe('Python/Perl regex to JavaScript', () => {
  it('named groups, back-references, anchors and comments', () => {
    expect(py('(?P<user>\\S+) again (?P=user)')).toBe('(?<user>\\S+) again \\k<user>');
    expect(py('\\Afoo\\Z')).toBe('^foo$');
    expect(pl("(?'ip'\\d+)\\k{ip}\\g1\\z")).toBe('(?<ip>\\d+)\\k<ip>\\1$');
    expect(py('a(?# why)b')).toBe('ab');
  });

  it('inline flags become part of the pattern: (?i) global or scoped, (?s), (?x)', () => {
    const ci = py('(?i)failed for <HOST>');
    expect(ci).toContain('<HOST>');
    expect(matches(ci.replace('<HOST>', 'x'), 'FAILED FOR x')).toBe(true);
    // fail2ban's `((?i)LOGIN|PLAIN)` is scoped to its group.
    const scoped = py('SASL ((?i)login|PLAIN) x');
    expect(matches(scoped, 'SASL LoGiN x')).toBe(true);
    expect(matches(scoped, 'sasl LOGIN x')).toBe(false);
    expect(matches(py('(?i:[a-c]+)z'), 'AbCz')).toBe(true);
    expect(matches(py('(?s)a.b'), 'a\nb')).toBe(true);
    expect(py('(?x) a \\  b # comment\n c')).toBe('a bc');
  });

  it('Python oddities: {,n}, lone braces and brackets, escaped punctuation', () => {
    expect(py('a{,3}')).toBe('a{0,3}');
    expect(py('a{x}')).toBe('a\\{x\\}');
    expect(py("\\ \\:\\-\\'")).toBe(" :-'");
    expect(py('[]a]')).toBe('[\\]a]');
    for (const s of ['a{x}', '\\ \\:', '[]a]', 'a{,3}']) expect(() => new RegExp(py(s), 'u')).not.toThrow();
  });

  it('keeps address placeholders untouched even under (?i)', () => {
    expect(py('(?i)from <HOST> <ADDR> <IP4> <IP6>')).toMatch(/<HOST> <ADDR> <IP4> <IP6>$/);
    expect(pl('from {IP_NUMBER} port')).toBe('from {IP_NUMBER} port');
  });

  it('refuses what JavaScript cannot express, with a reason', () => {
    for (const [src, why] of [
      ['(?(1)a|b)', /conditional/],
      ['(?>a+)b', /atomic/],
      ['a++', /possessive/],
      ['\\Gfoo', /\\G/],
      ['[[:alpha:]]', /POSIX/],
      ['(a', /never closed/],
      ['a)', /unbalanced/],
    ] as const) {
      expect(() => py(src)).toThrow(UntranslatableRegex);
      expect(() => py(src)).toThrow(why);
    }
  });

  it('removes nested repetition that backtracks exponentially without changing what matches', () => {
    const src = '^(?:[^\\]"]*|"[^"]*")*$';
    const fixed = reduceNestedQuantifiers(src);
    expect(fixed).toBe('^(?:[^\\]"]|"[^"]*")*$');
    const hostile = `${'a'.repeat(40)}"`;
    const t0 = performance.now();
    expect(new RegExp(fixed).test(hostile)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(new RegExp(fixed).test('ab"c d"e')).toBe(true);
    // Under `+` the rewrite would lose the empty match: left alone.
    expect(reduceNestedQuantifiers('(?:a*|b)+')).toBe('(?:a*|b)+');
  });

  it('anchorAfterHost lets a leading ^ skip the syslog host token', () => {
    const js = anchorAfterHost('^sshd\\[\\d+\\]: x|^other');
    expect(matches(js, 'web1 sshd[12]: x')).toBe(true);
    expect(matches(js, 'sshd[12]: x')).toBe(true);
    expect(matches(js, 'web1 evil sshd[12]: x')).toBe(false);
    expect(matches(js, 'h other')).toBe(true);
  });

  it('regex tree: groups, quantifiers and alternatives', () => {
    const t = parseRegexTree('a(?P<x>b|c)?(?:d)+[)(]\\)');
    expect(t.groups.map((g) => [g.kind, g.name, g.min, g.bars.length])).toEqual([
      ['named', 'x', 0, 1],
      ['group', undefined, 1, 0],
    ]);
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, RampartError } from '../../src/core/errors.js';
import { builtinRule, builtinRuleNames, builtinRules, loadRulesFile } from '../../src/detect/rules-file.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(fn: () => unknown): RampartError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RampartError) return err;
    throw err;
  }
  throw new Error('expected an error');
}

describe('native rules YAML', () => {
  it('loads a rule with fail2ban defaults and parsed durations', () => {
    const p = file(
      'ok.yaml',
      `rules:
  - name: web
    patterns: ['^bad from <HOST>$']
  - name: api
    patterns: ['^x <ADDR>$']
    good: ['^ok <ADDR>$']
    maxretry: 3
    findtime: 1h
    bantime: permanent
    escalation: { multiplier: 2, max: 1w }
    widen6: 64
    ignoreNets: [10.0.0.0/8]
    set: edge
`,
    );
    const [web, api] = loadRulesFile(p);
    expect(web).toMatchObject({
      name: 'web',
      maxretry: 5,
      findtime: 600,
      bantime: 600,
      set: 'blocklist',
      sources: [],
    });
    expect(api).toMatchObject({
      maxretry: 3,
      findtime: 3600,
      bantime: null,
      escalation: { multiplier: 2, max: 604800 },
      widen6: 64,
      ignoreNets: ['10.0.0.0/8'],
      set: 'edge',
    });
  });

  it('a wrong type names the file, the line and the key', () => {
    const p = file(
      'bad-type.yaml',
      `rules:\n  - name: web\n    patterns: ['^x <HOST>$']\n    maxretry: lots\n`,
    );
    const err = errorOf(() => loadRulesFile(p));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(`${p}:4: rules.0.maxretry`);
  });

  it('a bad duration names its line and key', () => {
    const p = file(
      'bad-dur.yaml',
      `rules:\n  - name: web\n    patterns: ['^x <HOST>$']\n    bantime: 10 parsecs\n`,
    );
    expect(errorOf(() => loadRulesFile(p)).message).toMatch(
      new RegExp(`${p}:4: rules\\.0\\.bantime: .*not a duration`),
    );
  });

  it('an invalid or unsafe pattern names its line and key', () => {
    const p = file(
      'bad-re.yaml',
      `rules:\n  - name: web\n    patterns:\n      - '^ok <HOST>$'\n      - '^(x <HOST>$'\n`,
    );
    const err = errorOf(() => loadRulesFile(p));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toContain(`${p}:5: rules.0.patterns.1`);
    const q = file('backref.yaml', `rules:\n  - name: web\n    patterns: ['^(a+)\\1 <HOST>$']\n`);
    expect(errorOf(() => loadRulesFile(q)).message).toMatch(/rules\.0\.patterns\.0: .*linear time/);
  });

  it('a repeated group around an unbounded repeat is refused, naming the rule, file, line and key, unless allowed', () => {
    const p = file(
      'slow.yaml',
      `rules:\n  - name: evil\n    patterns:\n      - '^ok <HOST>$'\n      - '(.*a){12}<HOST>'\n`,
    );
    const err = errorOf(() => loadRulesFile(p));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toContain(
      `${p}:5: rules.0.patterns.1: rule "evil": /(.*a){12}<HOST>/ repeats (.*a){12}`,
    );
    expect(err.message).toContain('allowSlowPatterns: true');
    const ok = file(
      'slow-ok.yaml',
      `rules:\n  - name: evil\n    allowSlowPatterns: true\n    patterns: ['(.*a){12}<HOST>']\n`,
    );
    expect(loadRulesFile(ok)[0]!.patterns).toEqual(['(.*a){12}<HOST>']);
  });

  it('a pattern without an address, an unknown key and a duplicate name are refused', () => {
    const noAddr = file('no-addr.yaml', `rules:\n  - name: web\n    patterns: ['^nothing$']\n`);
    expect(errorOf(() => loadRulesFile(noAddr)).message).toMatch(/patterns\.0: .*no address placeholder/);
    const unknown = file(
      'unknown.yaml',
      `rules:\n  - name: web\n    patterns: ['^x <HOST>$']\n    maxretyr: 3\n`,
    );
    expect(errorOf(() => loadRulesFile(unknown)).message).toMatch(/maxretyr/);
    const dup = file(
      'dup.yaml',
      `rules:\n  - name: a\n    patterns: ['^x <HOST>$']\n  - name: a\n    patterns: ['^y <HOST>$']\n`,
    );
    expect(errorOf(() => loadRulesFile(dup)).message).toMatch(/rules\.1\.name: duplicate rule name "a"/);
  });

  it('a missing file is a ConfigError naming it', () => {
    expect(errorOf(() => loadRulesFile(join(dir, 'nope.yaml'))).message).toMatch(
      /nope\.yaml: cannot read: no such file \(ENOENT\)/,
    );
  });
});

describe('built-in rules', () => {
  it('ships sshd, postfix-sasl, dovecot, nginx-http-auth and nginx-4xx', () => {
    expect(builtinRuleNames()).toEqual(['dovecot', 'nginx-4xx', 'nginx-http-auth', 'postfix-sasl', 'sshd']);
    expect(
      builtinRules()
        .map((r) => r.name)
        .sort(),
    ).toEqual(builtinRuleNames());
  });

  it('aggressive mode adds the failed-publickey pattern to sshd', () => {
    const normal = builtinRule('sshd');
    const aggressive = builtinRule('sshd', { aggressive: true });
    expect(normal.patterns.some((p) => p.includes('publickey'))).toBe(false);
    expect(aggressive.patterns.some((p) => p.includes('Failed publickey'))).toBe(true);
  });

  it('an unknown name lists the available ones', () => {
    expect(errorOf(() => builtinRule('telnetd')).message).toMatch(
      /no built-in rule "telnetd" \(available: dovecot, /,
    );
  });
});

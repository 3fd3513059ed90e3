import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileRule } from '../../src/detect/compile.js';
import { LogTimeParser } from '../../src/detect/log-time.js';
import type { RuleSpec } from '../../src/detect/rule.js';
import { builtinRule, builtinRuleNames } from '../../src/detect/rules-file.js';

interface Sample {
  lineNo: number;
  text: string;
  expect: { kind: 'fail' | 'good' | 'none'; ip?: string; aggressive: boolean };
}

const SAMPLES = new URL('./samples/', import.meta.url);

/** fail2ban's layout: a `# expect: ...` comment above each sample line. */
function readSamples(name: string): Sample[] {
  const lines = readFileSync(new URL(`${name}.log`, SAMPLES), 'utf8').split('\n');
  const out: Sample[] = [];
  let pending: Sample['expect'] | undefined;
  lines.forEach((line, i) => {
    const m = /^# expect: (good )?(\S+)( aggressive)?$/.exec(line);
    if (m) {
      pending =
        m[2] === 'none'
          ? { kind: 'none', aggressive: false }
          : { kind: m[1] ? 'good' : 'fail', ip: m[2], aggressive: Boolean(m[3]) };
    } else if (line.startsWith('#') || line.trim() === '') {
      // prose
    } else {
      if (!pending) throw new Error(`${name}.log:${i + 1}: sample without an expect comment`);
      out.push({ lineNo: i + 1, text: line, expect: pending });
      pending = undefined;
    }
  });
  return out;
}

function stripTime(text: string): string {
  const p = new LogTimeParser(() => Date.UTC(2026, 10, 21, 14));
  p.parse(text);
  return text.slice(p.restStart);
}

describe('built-in rules against their annotated samples', () => {
  const names = builtinRuleNames();

  it('every built-in rule has a sample file', () => {
    const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.log'));
    expect(names.length).toBeGreaterThanOrEqual(5);
    for (const n of names) expect(files).toContain(`${n}.log`);
  });

  for (const name of names) {
    describe(name, () => {
      const samples = readSamples(name);
      const normal = compileRule(builtinRule(name));
      const aggressive = compileRule(builtinRule(name, { aggressive: true }));

      it('every sample meets its expectation, in normal and aggressive mode', () => {
        expect(samples.length).toBeGreaterThan(3);
        for (const s of samples) {
          const where = `${name}.log:${s.lineNo}`;
          const text = stripTime(s.text);
          const a = aggressive.test(text);
          const n = normal.test(text);
          expect({ where, kind: a.kind, ip: a.ip }).toEqual({ where, kind: s.expect.kind, ip: s.expect.ip });
          if (s.expect.aggressive) expect({ where, kind: n.kind }).toEqual({ where, kind: 'none' });
          else
            expect({ where, kind: n.kind, ip: n.ip }).toEqual({
              where,
              kind: s.expect.kind,
              ip: s.expect.ip,
            });
        }
      });

      it('every pattern (failure, aggressive and good) is exercised by a sample', () => {
        const spec = builtinRule(name, { aggressive: true });
        const texts = samples.map((s) => stripTime(s.text));
        const one = (patterns: string[], good: string[]): RuleSpec => ({
          ...spec,
          patterns,
          good,
          ignore: [],
        });
        for (const p of spec.patterns) {
          const r = compileRule(one([p], []));
          expect(
            texts.some((t) => r.test(t).kind === 'fail'),
            `no sample matches ${p}`,
          ).toBe(true);
        }
        for (const g of spec.good) {
          const r = compileRule(one(['^(?<ip>NEVER)$'], [g]));
          expect(
            texts.some((t) => r.test(t).kind === 'good'),
            `no sample matches ${g}`,
          ).toBe(true);
        }
      });
    });
  }
});

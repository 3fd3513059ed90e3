import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileDatePatterns, cutDate } from '../../src/compat/fail2ban-date.js';
import { readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { tryParseTarget } from '../../src/core/address.js';
import { compileRule } from '../../src/detect/compile.js';

/**
 * Runs fail2ban's own annotated sample logs (`# failJSON: {...}` above each line, `# filterOptions`
 * switching options, `# addFILE` pulling in another sample) through the fail2ban loader and the
 * engine's compileRule, as fail2ban's samplestestcase.py does with its own filter code.
 */
export interface SampleResult {
  filter: string;
  /** Annotated lines checked (once per option set that applies). */
  checked: number;
  passed: number;
  /** Expected hosts that are names, not addresses: rampart never resolves DNS. */
  dns: number;
  /** Option sets whose filter did not load, with the error. */
  loadErrors: string[];
  failures: string[];
}

type Opts = Record<string, string>;

/** fail2ban's `constraint`/`test.condition` expressions seen in the samples: name and opts tests. */
function evalCondition(expr: string, name: string, opts: Opts): boolean {
  return expr.split(/\s+and\s+/).every((part) => {
    const m = /^(name|opts\.get\('([\w.-]+)'\))\s*(==|!=)\s*'([^']*)'$/.exec(part.trim());
    if (!m) throw new Error(`unsupported sample condition: ${expr}`);
    const actual = m[1] === 'name' ? name : opts[m[2]!];
    return m[3] === '==' ? actual === m[4] : actual !== m[4];
  });
}

interface Variant {
  opts: Opts;
  test?: (line: string) => { kind: string; ip?: string };
  dates: RegExp[];
  error?: string;
}

export function runSamples(filterDir: string, logDir: string, filter: string): SampleResult {
  const result: SampleResult = { filter, checked: 0, passed: 0, dns: 0, loadErrors: [], failures: [] };
  const load = (opts: Opts): Variant => {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts)) if (!k.startsWith('test.')) vars[k] = String(v);
    try {
      const f = readFail2banFilter(join(filterDir, `${filter}.conf`), { vars });
      const compiled = compileRule(f.rule);
      return { opts, test: (l) => compiled.test(l), dates: compileDatePatterns(f.datePatterns) };
    } catch (err) {
      const msg = `${JSON.stringify(opts)}: ${(err as Error).message}`;
      if (!result.loadErrors.includes(msg)) result.loadErrors.push(msg);
      return { opts, dates: [], error: msg };
    }
  };
  const files = [filter];
  let variants: Variant[] | undefined;
  let ignoreBlock = false;
  for (let fi = 0; fi < files.length; fi++) {
    const lines = readFileSync(join(logDir, files[fi]!), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const m = /^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$/.exec(lines[i]!);
      if (!m) continue;
      const data = JSON.parse(m[2]!);
      if (m[1] === 'addFILE') {
        files.push(data);
        continue;
      }
      if (m[1] === 'filterOptions') {
        variants = [];
        ignoreBlock = false;
        for (const opts of Array.isArray(data) ? data : [data]) {
          if (opts['test.condition'] && !evalCondition(opts['test.condition'], filter, opts)) {
            ignoreBlock = true;
            continue;
          }
          variants.push(load(opts));
        }
        continue;
      }
      if (m[1] !== 'failJSON' || ignoreBlock) continue;
      variants ??= [load({})];
      const line = lines[++i] ?? '';
      for (const v of variants) {
        if (data.constraint && !evalCondition(data.constraint, filter, v.opts)) continue;
        const host: string | undefined = data.host;
        const want = data.match === true;
        if (want && host !== undefined && !tryParseTarget(host)) {
          result.dns++;
          continue;
        }
        result.checked++;
        if (!v.test) continue;
        let text = line;
        if (v.opts.logtype === 'journal') text = (v.opts['test.prefix-line'] ?? '') + line;
        else text = cutDate(line, v.dates);
        const got = v.test(text);
        const expectIp = host ? tryParseTarget(host)?.text : undefined;
        const ok = want
          ? got.kind === 'fail' && (expectIp === undefined || got.ip === expectIp)
          : got.kind !== 'fail';
        if (ok) result.passed++;
        else {
          result.failures.push(
            `${files[fi]}:${i + 1} ${JSON.stringify(v.opts)} expected ${want ? `fail ${host}` : 'no failure'}, got ${got.kind} ${got.ip ?? ''}: ${line}`,
          );
        }
      }
    }
  }
  return result;
}

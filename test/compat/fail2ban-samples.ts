import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail2banLineAdapter } from '../../src/compat/fail2ban-date.js';
import { readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { tryParseTarget } from '../../src/core/address.js';
import { Engine } from '../../src/detect/engine.js';
import type { LogLine } from '../../src/detect/types.js';

/**
 * Runs fail2ban's own annotated sample logs (`# failJSON: {...}` above each line, `# filterOptions`
 * switching options, `# addFILE` pulling in another sample) through the fail2ban loader, the date
 * adapter and the engine, the path `rampart check --fail2ban-filter` takes, as fail2ban's
 * samplestestcase.py does with its own filter code. (Testing the compiled rule on a date cut by the
 * test itself once hid that the product path matched nothing for exim and four other filters.)
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
  test?: (line: LogLine) => { kind: string; ip?: string };
  error?: string;
}

export function runSamples(filterDir: string, logDir: string, filter: string): SampleResult {
  const result: SampleResult = { filter, checked: 0, passed: 0, dns: 0, loadErrors: [], failures: [] };
  const load = (opts: Opts): Variant => {
    const vars: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts)) if (!k.startsWith('test.')) vars[k] = String(v);
    try {
      const f = readFail2banFilter(join(filterDir, `${filter}.conf`), { vars });
      const adapt = fail2banLineAdapter(f.datePatterns);
      let got: { kind: string; ip?: string } = { kind: 'none' };
      const engine = new Engine([f.rule], {
        clock: 'log',
        ignoreSources: true,
        onWarning: () => {},
        onMatch: (m) => {
          got = { kind: m.kind, ip: m.ip };
        },
      });
      // fail2ban reads no date out of journal messages: the journal gives the time.
      const journal = opts.logtype === 'journal';
      const test = (l: LogLine) => {
        got = { kind: 'none' };
        engine.feed(journal ? l : adapt(l));
        return got;
      };
      return { opts, test };
    } catch (err) {
      const msg = `${JSON.stringify(opts)}: ${(err as Error).message}`;
      if (!result.loadErrors.includes(msg)) result.loadErrors.push(msg);
      return { opts, error: msg };
    }
  };
  // fail2ban keeps one filter per option set for the whole run (samplestestcase caches it by
  // name and options), so multi-line state carries from line to line and file to file.
  const cache = new Map<string, Variant>();
  const variant = (opts: Opts): Variant => {
    const key = JSON.stringify(Object.entries(opts).filter(([k]) => !k.startsWith('test.')));
    let v = cache.get(key);
    if (v === undefined) {
      v = load(opts);
      cache.set(key, v);
    }
    // `test.*` options (the journal prefix) belong to this block, not to the cached filter.
    return { ...v, opts };
  };
  const files = [filter];
  let variants: Variant[] | undefined;
  let ignoreBlock = false;
  let common: Opts = {};
  for (let fi = 0; fi < files.length; fi++) {
    const lines = readFileSync(join(logDir, files[fi]!), 'utf8').split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const m = /^#+ ?(failJSON|(?:file|filter)Options|addFILE):(.+)$/.exec(lines[i]!);
      let data: { match?: boolean; host?: string; constraint?: string } = {};
      if (m) {
        const json = JSON.parse(m[2]!);
        if (m[1] === 'addFILE') {
          files.push(json);
          continue;
        }
        if (m[1] === 'fileOptions') {
          common = json;
          continue;
        }
        if (m[1] === 'filterOptions') {
          variants = [];
          ignoreBlock = false;
          for (const own of Array.isArray(json) ? json : [json]) {
            const opts = { ...common, ...own };
            if (opts['test.condition'] && !evalCondition(opts['test.condition'], filter, opts)) {
              ignoreBlock = true;
              continue;
            }
            variants.push(variant(opts));
          }
          continue;
        }
        data = json;
        i++;
      } else if (ignoreBlock || lines[i]!.startsWith('#') || lines[i]!.trim() === '') {
        continue;
      }
      // Like samplestestcase, an unannotated line is still fed and must not match.
      if (ignoreBlock) continue;
      variants ??= [variant({})];
      const line = (lines[i] ?? '').replace(/\r$/, '');
      for (const v of variants) {
        if (data.constraint && !evalCondition(data.constraint, filter, v.opts)) continue;
        const host: string | undefined = data.host;
        const want = data.match === true;
        const dns = want && host !== undefined && !tryParseTarget(host);
        if (dns) result.dns++;
        else result.checked++;
        if (!v.test) continue;
        const text = v.opts.logtype === 'journal' ? (v.opts['test.prefix-line'] ?? '') + line : line;
        const got = v.test({ text, source: files[fi]!, time: v.opts.logtype === 'journal' ? 0 : undefined });
        // A host name: fed (it may move multi-line state) but not judged, rampart bans addresses.
        if (dns) continue;
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

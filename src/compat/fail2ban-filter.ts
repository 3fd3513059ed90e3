import { basename } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { type MultilineSpec, RULE_DEFAULTS, type RuleSpec } from '../detect/rule.js';
import { translateDatePattern } from './fail2ban-date.js';
import { type Fail2banConfig, readFail2banConfig } from './fail2ban-ini.js';
import { expand, parseTreeAt, split, type Where } from './fail2ban-variants.js';
import { translateRegex, UntranslatableRegex } from './regex-translate.js';
import { parseRegexTree } from './regex-tree.js';

/** Options a jail passes to its filter, as in `filter = sshd[mode=aggressive]`. */
export interface Fail2banFilterOptions {
  /** fail2ban's `mode` (`normal`, `ddos`, `extra`, `aggressive`...); overrides `[Init]`/the file. */
  mode?: string;
  /** Any other filter option (`publickey`, `logtype`, `_daemon`...); they override the file's. */
  vars?: Record<string, string>;
  /** Rule name; default: the file name without `.conf`. */
  name?: string;
  sources?: string[];
  maxretry?: number;
  findtime?: number;
  bantime?: number | null;
  set?: string;
}

/** A loaded filter: the rule plus what the rule format has no field for. */
export interface Fail2banFilter {
  rule: RuleSpec;
  /**
   * `datepattern` as JavaScript regex sources, or null when the filter relies on the default
   * date forms. Give them to `fail2banLineAdapter` (fail2ban-date.ts) in front of the engine.
   */
  datePatterns: string[] | null;
  /** fail2ban's `journalmatch` terms (`_SYSTEMD_UNIT=sshd.service`), for a journald source. */
  journalmatch: string[];
  /** What was approximated or left out, one sentence each (multi-line regexes, back-references). */
  notes: string[];
}

/** A translated failregex form before the prefregex is applied. */
interface Entry {
  kind: 'fail' | 'good' | 'nofail';
  js: string;
  where: Where;
  /** How many counting (fail, good) entries came from earlier failregex lines. */
  before: number;
}

// fail2ban's own tags: never looked up as options.
const RUNTIME_TAGS = /^(?:HOST|ADDR|IP4|IP6|DNS|CIDR|SUBNET|SKIPLINES|\/?F-[A-Z0-9_-]+\/?)$/;
const TAG = /<([^ <>]+)>/g;
const MAX_TAG_REPLACEMENTS = 500;
// Groups fail2ban uses for multi-line bookkeeping; they carry nothing a ban needs.
const HELPER_GROUPS = new Set(['mlfid', 'mlfforget', 'mlfgained', 'nofail']);
const ADDRESS = /<HOST>|<ADDR>|<IP4>|<IP6>|\(\?<(?:ip|ip4|ip6|addr|host)>/;

/** Loads a fail2ban `filter.d` file as a rampart rule; see `readFail2banFilter`. */
export function loadFail2banFilter(path: string, opts: Fail2banFilterOptions = {}): RuleSpec {
  return readFail2banFilter(path, opts).rule;
}

/**
 * Reads a fail2ban `filter.d` file (with `[INCLUDES]`, `.local` overrides, `[DEFAULT]`, `[Init]`,
 * `%(name)s` and `<name>` interpolation) and translates `[Definition]` `failregex`, `ignoreregex`
 * and `prefregex` from Python to JavaScript regex. Lines matched through `<F-NOFAIL>` become
 * ignore patterns and `<F-MLFGAINED>` (a successful login) good patterns. Throws ConfigError
 * naming the file, line and key for anything that cannot be translated.
 */
export function readFail2banFilter(path: string, opts: Fail2banFilterOptions = {}): Fail2banFilter {
  const cfg = readFail2banConfig(path);
  if (!cfg.hasSection('Definition')) throw new ConfigError('no [Definition] section', { file: path });
  const vars = initOptions(cfg, opts);
  const notes: string[] = [];
  const resolve = (name: string): string | undefined => {
    // Option names are lower case; `<HOST>` and friends are never options. Section names in
    // `<section/option>` keep their case (`<L_<logging>/failregex>`).
    const option = name.slice(name.indexOf('/') + 1);
    if (option !== option.toLowerCase() || RUNTIME_TAGS.test(name)) return undefined;
    if (Object.hasOwn(vars, name)) return vars[name];
    return cfg.get('Definition', name, vars);
  };
  // `[Init]` and the caller's options win over `[Definition]` (grafana sets datepattern in [Init]).
  const option = (key: string) => {
    const value = resolve(key);
    if (value === undefined) return undefined;
    const entry = cfg.raw('Definition', key) ?? cfg.raw('Init', key) ?? { file: path, line: 0, value };
    return { entry, value: substituteTags(value, resolve, { file: entry.file, line: entry.line, key }) };
  };

  const rule: RuleSpec = {
    name: opts.name ?? basename(path).replace(/\.(conf|local)$/, ''),
    sources: opts.sources ?? [],
    patterns: [],
    ignore: [],
    good: [],
    maxretry: opts.maxretry ?? RULE_DEFAULTS.maxretry,
    findtime: opts.findtime ?? RULE_DEFAULTS.findtime,
    bantime: opts.bantime !== undefined ? opts.bantime : RULE_DEFAULTS.bantime,
    ignoreNets: [],
    set: opts.set ?? RULE_DEFAULTS.set,
    origin: path,
  };

  let prefJs: string | undefined;
  const pref = option('prefregex');
  const prefWhere = { file: pref?.entry.file ?? path, line: pref?.entry.line ?? 0, key: 'prefregex' };
  if (pref && pref.value.trim() !== '') {
    prefJs = toJs(stripHelperGroups(fTags(pref.value.trim(), prefWhere)), prefWhere);
  }

  const fail = option('failregex');
  if (!fail) throw new ConfigError('[Definition] has no failregex', { file: path, key: 'failregex' });
  const entries: Entry[] = [];
  let multiLine = 0;
  for (const [i, line] of regexLines(fail.value).entries()) {
    const where = { file: fail.entry.file, line: fail.entry.line, key: `failregex[${i}]` };
    if (isMultiLine(line)) {
      multiLine++;
      continue;
    }
    // fail2ban takes the first failregex that matches, so a later <F-NOFAIL> must not cancel a
    // failure an earlier failregex found: its ignore pattern is guarded against those.
    const before = entries.filter((e) => e.kind !== 'nofail').length;
    const push = (kind: Entry['kind'], regex: string) =>
      entries.push({ kind, js: toJs(stripHelperGroups(regex), where), where, before });
    for (const variant of expand(fTags(line, where), where, notes)) {
      const [nofail, counted] = split(variant, 'nofail', where);
      if (nofail !== null) push('nofail', nofail);
      if (counted === null) continue;
      const [gained, failure] = split(counted, 'mlfgained', where);
      if (gained !== null) push('good', gained);
      if (failure !== null) push('fail', failure);
    }
  }
  const ignoreJs: string[] = [];
  const ign = option('ignoreregex');
  if (ign) {
    for (const [i, line] of regexLines(ign.value).entries()) {
      const where = { file: ign.entry.file, line: ign.entry.line, key: `ignoreregex[${i}]` };
      for (const variant of expand(fTags(line, where), where, notes))
        ignoreJs.push(toJs(stripHelperGroups(variant), where));
    }
  }

  // Two ways to honour the prefregex. When every pattern captures its address in the content and
  // there is no ignoreregex, the engine's own prefregex support is exact and fastest (the prefix
  // runs once per line). Otherwise the prefregex is folded into every pattern: the address may
  // sit in the prefix (apache's `[client <HOST>]`), and fail2ban applies ignoreregex to the whole
  // line, which the engine would apply to the content only.
  const counting = entries.filter((e) => e.kind !== 'nofail');
  // (Patterns with no address anywhere are dropped either way, so they do not force folding.)
  const contentMode =
    prefJs !== undefined &&
    ignoreJs.length === 0 &&
    (!ADDRESS.test(prefJs) || counting.every((e) => ADDRESS.test(e.js)));
  const shape = prefJs === undefined || contentMode ? (js: string) => js : embedder(prefJs, prefWhere);
  const shaped = entries.map((e) => ({ ...e, js: shape(e.js) }));
  const countingShaped = shaped.filter((e) => e.kind !== 'nofail').map((e) => e.js);
  let noAddress = 0;
  for (const e of shaped) {
    const js = e.kind === 'nofail' ? guarded(e.js, countingShaped.slice(0, e.before)) : e.js;
    // fail2ban ties such lines to an address seen on another line (<F-MLFID>); rampart cannot.
    if (e.kind !== 'nofail' && !ADDRESS.test(js)) {
      noAddress++;
      continue;
    }
    try {
      new RegExp(js.replace(/<HOST>|<ADDR>|<IP4>|<IP6>/g, 'x'));
    } catch (err) {
      throw new ConfigError(`prefregex and failregex do not combine: ${(err as Error).message}`, e.where);
    }
    (e.kind === 'fail' ? rule.patterns : e.kind === 'good' ? rule.good : rule.ignore).push(js);
  }
  rule.ignore.push(...ignoreJs);
  if (contentMode) rule.prefregex = prefJs;
  const maxlines = option('maxlines');
  rule.multiline = multilineSpec({
    pref: pref && pref.value.trim() !== '' ? { value: pref.value.trim(), where: prefWhere } : undefined,
    fail: regexLines(fail.value).map((value, i) => ({
      value,
      where: { file: fail.entry.file, line: fail.entry.line, key: `failregex[${i}]` },
    })),
    ignore: ignoreJs,
    maxlines: maxlines ? parseMaxlines(maxlines.value, { ...maxlines.entry, key: 'maxlines' }) : 1,
    notes,
  });
  if (rule.multiline !== undefined) {
    notes.push(
      rule.multiline.maxlines > 1
        ? `runs with fail2ban's multi-line buffer (maxlines = ${rule.multiline.maxlines}) and sessions`
        : "runs with fail2ban's <F-MLFID> sessions (lines tied to an address seen on another line)",
    );
  } else if (multiLine > 0) {
    notes.push(
      `${multiLine} multi-line failregex (<SKIPLINES> or \\n, fail2ban's maxlines) left out: not supported`,
    );
  }
  if (noAddress > 0 && rule.multiline === undefined) {
    notes.push(
      `${noAddress} failregex without an address (fail2ban links them to another line through <F-MLFID>) left out`,
    );
  }
  if (rule.patterns.length === 0 && rule.multiline === undefined) {
    const why =
      multiLine > 0
        ? 'only multi-line regexes (<SKIPLINES>, maxlines > 1), which rampart does not support'
        : 'no failregex that captures an address';
    throw new ConfigError(`filter has ${why}`, {
      file: fail.entry.file,
      line: fail.entry.line,
      key: 'failregex',
    });
  }

  let datePatterns: string[] | null = null;
  const date = option('datepattern');
  if (date) {
    try {
      datePatterns = translateDatePattern(date.value);
    } catch (err) {
      throw asConfigError(err, { file: date.entry.file, line: date.entry.line, key: 'datepattern' });
    }
  }
  if (/<(?:F-)?(?:CIDR|SUBNET)\/?>/.test(fail.value)) {
    notes.push('<CIDR>/<SUBNET>: the address is counted and banned, not the network it names');
  }
  if (/<(?:F-)?DNS\/?>/.test(fail.value)) {
    notes.push('<DNS>: host names match but count nothing (rampart never resolves names)');
  }
  const jm = option('journalmatch');
  const journalmatch = jm ? jm.value.split(/\s+/).filter((t) => t !== '') : [];
  return { rule, datePatterns, journalmatch, notes: [...new Set(notes)] };
}

/** `[Init]` values, then the caller's options on top (fail2ban's precedence). */
function initOptions(cfg: Fail2banConfig, opts: Fail2banFilterOptions): Record<string, string> {
  const vars: Record<string, string> = {};
  if (cfg.hasSection('Init')) {
    for (const key of cfg.keys('Init', false)) {
      const v = cfg.get('Init', key) ?? '';
      vars[key] = v;
      vars[`known/${key}`] = v;
    }
  }
  for (const [k, v] of Object.entries(opts.vars ?? {})) vars[k.toLowerCase()] = v;
  if (opts.mode !== undefined) vars.mode = opts.mode;
  return vars;
}

/**
 * fail2ban's `<name>` substitution: a tag naming another option (or `section/option`) is replaced
 * by that option's value, recursively, innermost first (`<lt_<logtype>/__prefix_line>`). Tags that
 * name nothing (`<HOST>`, `<F-USER>`, a literal `<\S+@\S+>`) stay as written.
 */
export function substituteTags(
  value: string,
  resolve: (name: string) => string | undefined,
  where: Where,
): string {
  let out = value;
  let count = 0;
  TAG.lastIndex = 0;
  for (let m = TAG.exec(out); m; m = TAG.exec(out)) {
    const name = m[1]!;
    const repl = resolve(name);
    if (repl === undefined) continue;
    if (++count > MAX_TAG_REPLACEMENTS) {
      throw new ConfigError(`<${name}> keeps expanding into itself (self-referencing definitions)`, where);
    }
    out = out.slice(0, m.index) + repl + out.slice(m.index + m[0].length);
    // Rescan from the start: the replacement may complete an enclosing tag (`<mdre-<mode>>`).
    TAG.lastIndex = 0;
  }
  return out;
}

function regexLines(value: string): string[] {
  return value
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** `<SKIPLINES>` or a `\n` escape (not the literal `\\n` apache-noscript matches). */
function isMultiLine(regex: string): boolean {
  return regex.includes('<SKIPLINES>') || /(?:^|[^\\])(?:\\\\)*\\n/.test(regex);
}

function parseMaxlines(value: string, where: Where): number {
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new ConfigError(
      `maxlines must be a whole number from 1 to 1000, not ${JSON.stringify(value)}`,
      where,
    );
  }
  return n;
}

/**
 * The spec of the engine's multi-line stage (src/detect/multiline.ts), or undefined when the
 * filter needs none: only filters that buffer lines (`maxlines` > 1, `<SKIPLINES>`, `\n`) or tie
 * lines together through `<F-MLFID>` pay for it. Helper groups (`mlfid`, `nofail`, ...) are kept:
 * the stage reads them as fail2ban does.
 */
function multilineSpec(f: {
  pref: { value: string; where: Where } | undefined;
  fail: { value: string; where: Where }[];
  ignore: string[];
  maxlines: number;
  notes: string[];
}): MultilineSpec | undefined {
  const mlfid = (r: string) => r.includes('<F-MLFID>');
  const needed =
    f.maxlines > 1 ||
    (f.pref !== undefined && mlfid(f.pref.value)) ||
    f.fail.some((r) => mlfid(r.value) || isMultiLine(r.value));
  if (!needed) return undefined;
  const failregex: string[] = [];
  for (const { value, where } of f.fail) {
    let n = 0;
    // fail2ban's expansion: a line break, then lazily any number of whole lines (kept apart).
    const skips = value.replace(/<SKIPLINES>/g, () => `\\n(?P<skiplines${n++}>(?:(?:.*\\n)*?))`);
    for (const variant of expand(fTags(skips, where), where, f.notes)) failregex.push(toJs(variant, where));
  }
  const prefregex = f.pref ? toJs(fTags(f.pref.value, f.pref.where), f.pref.where) : undefined;
  return { maxlines: f.maxlines, prefregex, failregex, ignoreregex: f.ignore };
}

/** `<F-USER>...</F-USER>` → `(?P<user>...)`, as fail2ban does; self-closing `<F-ID/>` forms too. */
function fTags(regex: string, where: Where): string {
  const open = new Set<string>();
  return regex.replace(/<(\/?)F-([A-Z0-9_-]+)(\/?)>/g, (tag, close: string, raw: string, self: string) => {
    const name = groupName(raw);
    if (self) {
      if (/^(?:IP4|IP6|ADDR|DNS|CIDR|SUBNET)$/.test(raw)) return `<${raw}>`;
      if (raw === 'ID') return String.raw`(?P<fid>\S+)`;
      if (raw === 'PORT') return String.raw`(?P<fport>\w+)`;
      throw new ConfigError(`unknown self-closing tag ${tag}`, where);
    }
    if (close) return open.has(name) ? ')' : tag;
    if (open.has(name)) throw new ConfigError(`${tag} is opened twice in one regex`, where);
    open.add(name);
    return `(?P<${name}>`;
  });
}

function groupName(tag: string): string {
  const n = tag.toLowerCase().replace(/-/g, '_');
  if (n === 'id') return 'fid';
  if (n === 'port') return 'fport';
  return /^\d/.test(n) ? `_${n}` : n;
}

/**
 * Returns a function that puts a failregex (JavaScript) where the prefregex has its `<F-CONTENT>`
 * group, so one pattern checks both. fail2ban searches the content (a failregex without `^` may
 * match anywhere in it), so unanchored alternatives get a lazy `.*?` in front.
 */
function embedder(prefJs: string, where: Where): (js: string) => string {
  const tree = parseTreeAt(prefJs, where);
  const content = tree.groups.find((g) => g.name === 'content');
  if (!content) throw new ConfigError('prefregex has no <F-CONTENT>...</F-CONTENT> part', where);
  if (content.parent)
    throw new ConfigError('<F-CONTENT> inside a group of the prefregex is not supported', where);
  const head = prefJs.slice(0, content.open);
  const body = prefJs.slice(content.bodyStart, content.close);
  const tail = prefJs.slice(content.end);
  // `.+` up to the end (the usual form) needs no check: whatever follows the prefix is content.
  const simple = /^\.[+*]\??$/.test(body) && (tail === '$' || tail === '') && content.quantifier === '';
  const guard = simple ? '' : `(?=(?:${body})${tail})`;
  return (js) => {
    const t = parseRegexTree(js);
    const starts = [0, ...t.bars.map((b) => b + 1)];
    const ends = [...t.bars, js.length];
    const parts = starts.map((from, i) => {
      const branch = js.slice(from, ends[i]);
      return branch.startsWith('^') ? branch.slice(1) : `.*?${branch}`;
    });
    return `${head}${guard}(?:${parts.join('|')})`;
  };
}

/**
 * An ignore pattern that does not apply to a line one of `earlier` matches. Its own text is
 * checked first, in a lookahead that fails fast on most lines; the guards (each a whole earlier
 * pattern, named groups made plain since a name may appear once per regex) run only after it.
 */
function guarded(body: string, earlier: string[]): string {
  if (earlier.length === 0) return body;
  const plain = earlier.map((p) => p.replace(/\(\?<([A-Za-z_]\w*)>/g, '(?:'));
  const guards = plain.map((p) => (p.startsWith('^') ? `(?!${p.slice(1)})` : `(?!.*?(?:${p}))`)).join('');
  return `^(?=.*?(?:${body}))${guards}`;
}

function stripHelperGroups(regex: string): string {
  return regex.replace(/\(\?P<(\w+)>/g, (m, n: string) => (HELPER_GROUPS.has(n) ? '(?:' : m));
}

/**
 * fail2ban's host tags the engine has no placeholder for, in the shapes fail2ban gives them. A
 * name (`<DNS>`) matches but captures nothing: rampart never resolves names (fail2ban's default
 * `usedns = warn` would), so a line whose only host is a name counts nothing. `<CIDR>` and the
 * prefix of `<SUBNET>` match but are not kept: the address is counted and banned, not its network.
 */
const HOST_TAGS: Record<string, string> = {
  '<DNS>': String.raw`(?:[\w\-.^_]*\w)`,
  '<CIDR>': String.raw`(?:\d+)`,
  '<SUBNET>': String.raw`\[?(?:<IP4>|<IP6>)(?:/\d+)?\]?`,
};

function toJs(regex: string, where: Where): string {
  let js: string;
  try {
    js = translateRegex(
      regex.replace(/<DNS>|<CIDR>|<SUBNET>/g, (t) => HOST_TAGS[t]!),
      'python',
    );
    new RegExp(js.replace(/<HOST>|<ADDR>|<IP4>|<IP6>/g, 'x'));
  } catch (err) {
    throw asConfigError(err, where);
  }
  return js;
}

function asConfigError(err: unknown, where: { file: string; line: number; key: string }): Error {
  if (err instanceof ConfigError) return err;
  if (err instanceof UntranslatableRegex || err instanceof SyntaxError) {
    return new ConfigError(`cannot translate regex: ${err.message}`, where, { cause: err });
  }
  return err as Error;
}

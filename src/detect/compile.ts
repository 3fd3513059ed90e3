import { parseIPv4, parseIPv6Words, tryParseTarget } from '../core/address.js';
import { RampartError } from '../core/errors.js';
import { assertSetName } from '../core/set-name.js';
import { type Combined, combinePatterns } from './combine.js';
import { requiredLiteral } from './literal.js';
import { expandPlaceholders, isAddressGroup, isInternalGroup } from './placeholders.js';
import { compileUserRegex, type LinearMode } from './regex-safety.js';
import type { RuleSpec } from './rule.js';
import { canonicalV6 } from './v6-text.js';

/** What one rule concludes about one line. */
export interface RuleMatch {
  /** fail: counts against `ip`; good: forgives `ip`; ignored: a pattern matched but an ignore pattern too. */
  kind: 'fail' | 'good' | 'ignored' | 'none';
  /** Canonical address text (IPv4-mapped IPv6 becomes IPv4). */
  ip?: string;
  /** Other named captures (`user`, ...). */
  fields?: Record<string, string>;
}

export interface CompiledRule {
  readonly spec: RuleSpec;
  /**
   * Literals one of which every line the rule classifies (fail or good) contains: the rule's
   * `prefilter`, else the required literals of its patterns when each has one; undefined when
   * some line could match without any.
   */
  readonly literals: readonly string[] | undefined;
  /** Classifies a line (its timestamp already stripped). */
  test(text: string): RuleMatch;
  /**
   * Hot-path variant used by the engine: no field objects. Returns the kind and leaves the
   * address in `out.ip` (and, when the fast path saw a plain IPv4, its value in `out.v4`, else -1).
   * `literalSeen`: the caller already knows `text` holds one of `literals` (the reader searched
   * the line for them), so the rule does not search again.
   */
  classify(text: string, out: MatchOut, literalSeen?: boolean): RuleMatch['kind'];
  /** Compiles the regexes the hot path runs now rather than on the first line (see there). */
  warm(): void;
}

/** Where `classify` leaves the address. */
export interface MatchOut {
  ip: string;
  /**
   * The address as a 32-bit number when it is plain IPv4 and already parsed; V6_WORDS when `v6`
   * holds it (then `ip` is the text as captured, not canonical: see `matchedText`); else -1.
   */
  v4?: number;
  /**
   * Given by the caller: the fast path writes an IPv6 address of hex groups here as four words
   * instead of making its canonical text, which a flood of IPv6 attackers would pay per line.
   */
  v6?: Int32Array;
}

/** `MatchOut.v4` when the address is IPv6 words in `MatchOut.v6`. */
export const V6_WORDS = -2;

/** The canonical text of what `classify` left in `out`. */
export function matchedText(out: MatchOut): string {
  return out.v4 === V6_WORDS ? canonicalAddress(out.ip)! : out.ip;
}

export interface CompileOptions {
  linear?: LinearMode;
  onWarning?: (message: string) => void;
}

interface Pattern {
  source: string;
  re: RegExp;
  /** Literal every match contains ('' = none known). */
  literal: string;
  hasAddress: boolean;
}

/**
 * Compiles a rule's patterns once. Throws RampartError('E_REGEX') naming the rule and the pattern
 * when one is invalid or unsafe, and E_CONFIG when a pattern cannot yield an address.
 */
export function compileRule(spec: RuleSpec, opts: CompileOptions = {}): CompiledRule {
  const where = (list: string, i: number) =>
    `rule "${spec.name}"${spec.origin ? ` (${spec.origin})` : ''} ${list}[${i}]`;
  // Every rule source (native YAML, fail2ban, banban, syslog-blacklist) ends here: one check.
  assertSetName(spec.set, `rule "${spec.name}"${spec.origin ? ` (${spec.origin})` : ''} set`);
  const build = (list: 'patterns' | 'ignore' | 'good', needAddress: boolean): Pattern[] =>
    spec[list].map((p, i) => {
      const { source, hasAddress } = expandPlaceholders(p);
      if (needAddress && !hasAddress) {
        throw new RampartError(
          'E_REGEX',
          `${where(list, i)}: pattern /${p}/ has no address placeholder (<HOST>, <ADDR>, <IP4>, <IP6>, {IP_NUMBER} or (?<ip>...))`,
        );
      }
      const re = compileUserRegex(source, where(list, i), {
        linear: opts.linear,
        onWarning: opts.onWarning,
        shown: p,
      });
      return { source, re, literal: requiredLiteral(source), hasAddress };
    });
  const fail = build('patterns', true);
  const ignore = build('ignore', false);
  const good = build('good', true);
  let pref: RegExp | undefined;
  if (spec.prefregex) {
    const src = expandPlaceholders(
      spec.prefregex.replace(/<F-CONTENT>/g, '(?<content>').replace(/<\/F-CONTENT>/g, ')'),
    ).source;
    pref = compileUserRegex(src, `rule "${spec.name}" prefregex`, {
      linear: opts.linear,
      onWarning: opts.onWarning,
    });
  }
  return new Compiled(spec, fail, ignore, good, pref, prefilterOf(spec, [...fail, ...good]));
}

class Compiled implements CompiledRule {
  private last: RegExpExecArray | null = null;

  private readonly failAll: Combined | null;
  private readonly goodAll: Combined | null;

  constructor(
    readonly spec: RuleSpec,
    private readonly fail: Pattern[],
    private readonly ignore: Pattern[],
    private readonly good: Pattern[],
    private readonly pref: RegExp | undefined,
    readonly literals: string[] | undefined,
  ) {
    this.failAll = combinePatterns(fail.map((p) => p.source));
    this.goodAll = combinePatterns(good.map((p) => p.source));
  }

  test(text: string): RuleMatch {
    const out = { ip: '' };
    const kind = this.run(text, out, false);
    if (kind === 'none') return { kind };
    const fields: Record<string, string> = {};
    const groups = this.last?.groups;
    if (groups) {
      for (const [k, v] of Object.entries(groups)) if (v !== undefined && !isInternalGroup(k)) fields[k] = v;
    }
    return kind === 'ignored' ? { kind, fields } : { kind, ip: out.ip, fields };
  }

  classify(text: string, out: MatchOut, literalSeen = false): RuleMatch['kind'] {
    return this.run(text, out, true, literalSeen);
  }

  /**
   * V8 compiles a regex on its first exec and again to machine code on a later one: for sshd's
   * merged pattern about 18 ms, which the first failing line of an attack would otherwise pay
   * before its ban. Three runs on an empty string (one-byte, like log lines) do both here.
   */
  warm(): void {
    const hot = [this.pref, ...this.ignore.map((p) => p.re)];
    hot.push(...(this.failAll ? [this.failAll.re] : this.fail.map((p) => p.re)));
    hot.push(...(this.goodAll ? [this.goodAll.re] : this.good.map((p) => p.re)));
    for (let i = 0; i < 3; i++) for (const re of hot) re?.exec('');
  }

  /** `fast`: use the merged regexes (no field captures); otherwise pattern by pattern. */
  private run(text: string, out: MatchOut, fast: boolean, literalSeen = false): RuleMatch['kind'] {
    this.last = null;
    if (this.literals !== undefined && !literalSeen && !containsAny(text, this.literals)) return 'none';
    let body = text;
    if (this.pref !== undefined) {
      const m = this.pref.exec(text);
      if (m === null) return 'none';
      body = m.groups?.content ?? text;
    }
    let kind: RuleMatch['kind'] = 'none';
    const hit = fast ? this.merged(this.failAll, this.fail, body, out) : this.first(this.fail, body, out);
    if (hit) kind = 'fail';
    else if (
      this.good.length > 0 &&
      (fast ? this.merged(this.goodAll, this.good, body, out) : this.first(this.good, body, out))
    ) {
      kind = 'good';
    }
    if (kind === 'none') return kind;
    if (this.ignore.length > 0) {
      const keep = this.last;
      for (const p of this.ignore) {
        if (p.literal !== '' && body.indexOf(p.literal) < 0) continue;
        if (p.re.test(body)) return 'ignored';
      }
      this.last = keep;
    }
    return kind;
  }

  /** One run of the merged regex; falls back to pattern by pattern when it cannot decide. */
  private merged(all: Combined | null, list: Pattern[], body: string, out: MatchOut): boolean {
    if (all === null) return this.first(list, body, out) !== null;
    const m = all.re.exec(body);
    if (m === null) return false;
    const groups = all.addressGroups;
    for (let i = 0; i < groups.length; i++) {
      const raw = m[groups[i]!];
      if (raw === undefined) continue;
      const v4 = parseIPv4(raw);
      if (v4 !== null) {
        out.ip = raw;
        out.v4 = v4;
        return true;
      }
      // Hex groups (nearly every IPv6 in logs) go to the caller as words; IPv4-mapped ones are
      // IPv4 for counting and banning, so they take the canonical path below.
      const w = out.v6;
      if (w !== undefined && parseIPv6Words(raw, w) && !(w[0] === 0 && w[1] === 0 && w[2] === 0xffff)) {
        out.ip = raw;
        out.v4 = V6_WORDS;
        return true;
      }
      const ip = canonicalAddress(raw);
      if (ip === null) break;
      out.ip = ip;
      out.v4 = -1;
      return true;
    }
    // The first matching pattern captured no valid address (a host name): a later one may.
    return this.first(list, body, out) !== null;
  }

  /** The first pattern that matches with a valid address; sets `out.ip` and `this.last`. */
  private first(list: Pattern[], body: string, out: MatchOut): RegExpExecArray | null {
    for (let i = 0; i < list.length; i++) {
      const p = list[i]!;
      if (p.literal !== '' && body.indexOf(p.literal) < 0) continue;
      const m = p.re.exec(body);
      if (m === null) continue;
      const ip = addressOf(m);
      if (ip === null) continue;
      out.ip = ip;
      out.v4 = -1;
      this.last = m;
      return m;
    }
    return null;
  }
}

/**
 * The rule's literal prefilter: its own, else one required literal per pattern that can classify
 * a line (fail and good; ignore patterns only act after those matched) when every one has one.
 * A matching line contains its pattern's literal, so a line with none of them matches nothing.
 */
function prefilterOf(spec: RuleSpec, patterns: Pattern[]): string[] | undefined {
  if (spec.prefilter !== undefined && spec.prefilter.length > 0) return spec.prefilter;
  if (patterns.length === 0 || patterns.some((p) => p.literal === '')) return undefined;
  return [...new Set(patterns.map((p) => p.literal))];
}

function containsAny(text: string, literals: string[]): boolean {
  for (let i = 0; i < literals.length; i++) if (text.indexOf(literals[i]!) >= 0) return true;
  return false;
}

/** The canonical address a match captured, or null (hostname, malformed, nothing captured). */
export function addressOf(m: RegExpExecArray): string | null {
  const g = m.groups;
  if (g === undefined) return null;
  // Groups come in pattern order: the first address placeholder that took part decides.
  for (const name in g) {
    const raw = g[name];
    if (raw === undefined || raw.length === 0 || !isAddressGroup(name)) continue;
    return canonicalAddress(raw);
  }
  return null;
}

/**
 * Canonical text of a single address, or null. A strict dotted quad is already canonical
 * (parseIPv4 refuses leading zeros), and IPv6 of hex groups is formatted from its words, so only
 * odd spellings (dotted-quad tails, a trailing dot) take the bigint parser.
 */
export function canonicalAddress(raw: string): string | null {
  if (parseIPv4(raw) !== null) return raw;
  if (raw.length > 45 || raw.indexOf('/') >= 0) return null;
  const v6 = canonicalV6(raw);
  if (v6 !== null) return v6;
  let t = tryParseTarget(raw);
  // A greedy capture may take a sentence's final dot or a port's colon ("from 192.0.2.1.").
  if (t === null && (raw.endsWith('.') || raw.endsWith(':'))) t = tryParseTarget(raw.replace(/[.:]+$/, ''));
  return t === null ? null : t.text;
}

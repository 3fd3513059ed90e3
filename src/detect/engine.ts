import { assertBannable, formatIPv4, parseIPv4, parseTarget, widen } from '../core/address.js';
import { Allowlist } from '../core/allowlist.js';
import type { DurationSeconds } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { type CompiledRule, compileRule, type MatchOut } from './compile.js';
import { cutDate } from './date-cut.js';
import { LogTimeParser } from './log-time.js';
import { MultilineStage } from './multiline.js';
import type { LinearMode } from './regex-safety.js';
import type { RuleSpec } from './rule.js';
import { sourceMatcher } from './source-match.js';
import { TrackerTable } from './tracker-table.js';
import type { DetectEvent, LogLine } from './types.js';

export interface EngineOptions {
  /** `log`: windows use the line's own time (replays, `rampart check`); `wall`: the clock. */
  clock: 'log' | 'wall';
  /** Global allowlist: addresses in it are never counted nor banned. */
  allowlist?: Allowlist;
  /** Cap on tracked (rule, address) pairs; the least recently seen are evicted. Default 1,000,000. */
  maxTracked?: number;
  /** Wall clock, epoch ms (tests inject one). */
  now?: () => number;
  onWarning?: (message: string) => void;
  /** Linear-time demand on user patterns (see regex-safety). Default `prefer`. */
  linear?: LinearMode;
  /** Lines longer than this (characters) are counted as oversized and not matched. Default 16 KiB. */
  maxLineLength?: number;
  /** Apply every rule to every line whatever its source (replays of arbitrary files). */
  ignoreSources?: boolean;
  /** Called for each line a rule classifies as a failure or a good line (`rampart check --matches`). */
  onMatch?: (match: { rule: string; ip: string; kind: 'fail' | 'good'; at: number }) => void;
  /**
   * Called for each failure that counted but stayed below the rule's `maxretry`, for rules with a
   * `fleet` threshold only (the agent sends these to the hub for fleet-wide counting). `ip` is the
   * tracked address (an IPv6 /64 where the rule widens); it may be a slice of a read chunk.
   */
  onBelowThreshold?: (rule: string, ip: string, at: number) => void;
}

export interface EngineStats {
  lines: number;
  /** Failure matches (lines that counted or would have counted against an address). */
  matched: number;
  good: number;
  /** Lines a pattern matched but an ignore pattern excluded. */
  ignored: number;
  /** Matches against allowlisted, ignored-network or never-bannable addresses. */
  skipped: number;
  bans: number;
  unbans: number;
  /** Tracked (rule, address) pairs dropped because the cap was reached. */
  evictions: number;
  tracked: number;
  oversized: number;
}

interface Rule {
  compiled: CompiledRule;
  spec: RuleSpec;
  index: number;
  findtimeMs: number;
  ignoreNets: Allowlist;
  /** Address text (IPv6) → tracker key, widened where the rule asks. */
  textKeys: Map<string, string>;
  /** The rule's fail2ban date patterns, compiled; undefined = the engine's own date stripping. */
  dates?: RegExp[];
  /** fail2ban's multi-line/session stage, only for rules that need one. */
  multi?: MultilineStage;
  /** EngineOptions.onBelowThreshold for a rule with a fleet threshold; undefined costs one check. */
  belowThreshold?: (rule: string, ip: string, at: number) => void;
}

interface Tracker {
  /** Ring of the last failure times (ms), at most maxretry: `count` of them from `head`. */
  ring: number[];
  head: number;
  count: number;
  /**
   * `ring[head]` while count > 0: the expiry check reads this field of the object it already
   * touched instead of the ring, a second cache miss per line over tens of thousands of trackers.
   */
  oldest: number;
  /** The last failure time: when even it is out of the window, all are, without reading the ring. */
  newest: number;
  /** The address must never be banned: count and skip. */
  skip: boolean;
  /** Ban end (ms) while banned by this engine, Infinity when permanent, 0 when not banned. */
  bannedUntil: number;
  /** Bans so far, for escalation. */
  bans: number;
}

type Key = number | string;
/** Rules per engine that numeric IPv4 keys can tell apart (address × RULE_SLOTS + rule index). */
const RULE_SLOTS = 4096;

const NO_EVENTS: readonly DetectEvent[] = Object.freeze([]);
const DEFAULT_MAX_TRACKED = 1_000_000;
const DEFAULT_MAX_LINE = 16_384;
const TEXT_KEYS_MAX = 65_536;
/** Each tracker keeps maxretry timestamps; this keeps tracked memory bounded (as in rules-file). */
const MAX_RETRY = 10_000;
function compileDate(spec: RuleSpec, source: string): RegExp {
  try {
    return new RegExp(source, 'd');
  } catch (err) {
    throw new ConfigError(`rule "${spec.name}": invalid date pattern: ${(err as Error).message}`, {
      file: spec.origin,
      key: 'datePatterns',
    });
  }
}

/** Bounds bantime × multiplier^bans so it cannot overflow. */
const MAX_ESCALATION_STEPS = 64;

/**
 * Turns log lines into ban and unban events, one pass per line. Counters live in a bounded map
 * that evicts the addresses quiet for longest, so an attack from a million addresses costs
 * bounded memory; per address and rule it keeps at most `maxretry` failure times.
 */
export class Engine {
  private readonly rules: Rule[];
  /**
   * One tracker per (rule, address). IPv4 is looked up by (address number, rule index) in typed
   * arrays; IPv6 by `rule index|text`, the text widened where the rule asks. `Key` (below) names
   * a tracker only off the hot path: first sight, bans and unbans.
   */
  private readonly trackers: TrackerTable<Tracker>;
  private readonly bySource = new Map<string, Rule[]>();
  private readonly times: LogTimeParser;
  private readonly now: () => number;
  private readonly maxLine: number;
  private lastLogTime = Number.NaN;
  private readonly out: MatchOut = { ip: '', v4: -1 };
  /** By rule index: one array slot bumped per match, so metrics cost the hot path nothing more. */
  private readonly ruleMatches: number[];
  private readonly counters: EngineStats = {
    lines: 0,
    matched: 0,
    good: 0,
    ignored: 0,
    skipped: 0,
    bans: 0,
    unbans: 0,
    evictions: 0,
    tracked: 0,
    oversized: 0,
  };

  constructor(
    specs: RuleSpec[],
    private readonly opts: EngineOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.times = new LogTimeParser(this.now);
    this.trackers = new TrackerTable(Math.max(2, opts.maxTracked ?? DEFAULT_MAX_TRACKED));
    this.maxLine = opts.maxLineLength ?? DEFAULT_MAX_LINE;
    if (specs.length > RULE_SLOTS) throw new RangeError(`at most ${RULE_SLOTS} rules per engine`);
    for (const spec of specs) {
      if (!Number.isInteger(spec.maxretry) || spec.maxretry < 1 || spec.maxretry > MAX_RETRY) {
        throw new ConfigError(`rule "${spec.name}": maxretry must be a whole number from 1 to ${MAX_RETRY}`, {
          file: spec.origin,
          key: 'maxretry',
        });
      }
    }
    this.ruleMatches = specs.map(() => 0);
    this.rules = specs.map((spec, index) => ({
      compiled: compileRule(spec, { linear: opts.linear, onWarning: opts.onWarning }),
      spec,
      index,
      findtimeMs: spec.findtime * 1000,
      ignoreNets: new Allowlist(spec.ignoreNets),
      textKeys: new Map(),
      dates: spec.datePatterns?.map((d) => compileDate(spec, d)),
      multi:
        spec.multiline === undefined
          ? undefined
          : new MultilineStage(spec, spec.multiline, { linear: opts.linear, onWarning: opts.onWarning }),
      belowThreshold: spec.fleet !== undefined ? opts.onBelowThreshold : undefined,
    }));
  }

  /**
   * Classifies one line with every rule that reads its source and returns the bans and unbans it
   * triggers. The returned array is shared when empty: do not mutate it.
   */
  feed(line: LogLine): DetectEvent[] {
    const c = this.counters;
    c.lines++;
    let text = line.text;
    if (text.length > this.maxLine) {
      c.oversized++;
      return NO_EVENTS as DetectEvent[];
    }
    const stamp = this.times.parse(text);
    if (this.times.restStart > 0) text = text.slice(this.times.restStart);
    let at: number;
    if (this.opts.clock === 'wall') {
      at = this.now();
    } else {
      at = line.time ?? stamp;
      if (Number.isNaN(at)) at = Number.isNaN(this.lastLogTime) ? this.now() : this.lastLogTime;
      this.lastLogTime = at;
    }
    const rules = this.opts.ignoreSources ? this.rules : this.rulesFor(line.source);
    let events: DetectEvent[] | undefined;
    const out = this.out;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      const body = rule.dates ? cutDate(line.text, rule.dates) : text;
      const kind =
        rule.multi === undefined
          ? rule.compiled.classify(body, out)
          : rule.multi.classify(body, line.source, at, out);
      if (kind === 'none') continue;
      if (kind === 'ignored') {
        c.ignored++;
        continue;
      }
      this.opts.onMatch?.({ rule: rule.spec.name, ip: out.ip, kind, at });
      const ev = kind === 'fail' ? this.fail(rule, out, at) : this.forgive(rule, out, at);
      if (ev !== null) {
        events ??= [];
        events.push(ev);
      }
    }
    return events ?? (NO_EVENTS as DetectEvent[]);
  }

  stats(): EngineStats {
    return { ...this.counters, tracked: this.trackers.size, evictions: this.trackers.evictions };
  }

  /** Failure matches per rule name since start (metrics read them at scrape time). */
  ruleMatchCounts(): Array<{ rule: string; matches: number }> {
    return this.rules.map((r) => ({ rule: r.spec.name, matches: this.ruleMatches[r.index]! }));
  }

  private fail(rule: Rule, addr: MatchOut, at: number): DetectEvent | null {
    const c = this.counters;
    c.matched++;
    this.ruleMatches[rule.index]!++;
    const v4 = this.v4Of(addr);
    let text: string | null = null;
    let t: Tracker | undefined;
    if (v4 >= 0) {
      t = this.trackers.getV4(v4, rule.index);
    } else {
      text = this.textKey(rule, addr.ip);
      if (text === null) {
        c.skipped++;
        return null;
      }
      t = this.trackers.getText(text);
    }
    if (t === undefined) {
      // Filled with a non-integer so V8 picks double elements at once (cheaper than a Float64Array).
      const ring: number[] = new Array(rule.spec.maxretry).fill(0.5);
      const key = text ?? v4 * RULE_SLOTS + rule.index;
      t = {
        ring,
        head: 0,
        count: 0,
        oldest: 0,
        newest: 0,
        skip: !this.bannable(rule, key),
        bannedUntil: 0,
        bans: 0,
      };
      if (text === null) this.trackers.addV4(v4, rule.index, t);
      else this.trackers.addText(text, t);
    }
    if (t.skip) {
      c.skipped++;
      return null;
    }
    if (t.bannedUntil > at) return null;
    t.bannedUntil = 0;
    // Drop failures older than the window, then append (overwriting the oldest when full).
    const ring = t.ring;
    const size = ring.length;
    const horizon = at - rule.findtimeMs;
    if (t.newest <= horizon) t.count = 0;
    while (t.count > 0 && t.oldest <= horizon) {
      t.head = t.head + 1 === size ? 0 : t.head + 1;
      t.count--;
      t.oldest = ring[t.head]!;
    }
    if (t.count === size) {
      t.head = t.head + 1 === size ? 0 : t.head + 1;
      t.count--;
      t.oldest = ring[t.head]!;
    }
    const tail = t.head + t.count;
    ring[tail >= size ? tail - size : tail] = at;
    if (t.count === 0) t.oldest = at;
    t.newest = at;
    t.count++;
    if (t.count < size) {
      if (rule.belowThreshold !== undefined)
        rule.belowThreshold(rule.spec.name, text === null ? addr.ip : keyText(text), at);
      return null;
    }
    // Re-check at ban time: the allowlist may have grown since the address was first seen.
    const key = text ?? v4 * RULE_SLOTS + rule.index;
    if (!this.bannable(rule, key)) {
      t.skip = true;
      c.skipped++;
      return null;
    }
    const hits = t.count;
    t.count = 0;
    const duration = escalate(rule.spec, t.bans);
    t.bans = Math.min(t.bans + 1, MAX_ESCALATION_STEPS);
    t.bannedUntil = duration === null ? Number.POSITIVE_INFINITY : at + duration * 1000;
    c.bans++;
    return this.event('ban', rule, key, at, hits, duration);
  }

  private forgive(rule: Rule, addr: MatchOut, at: number): DetectEvent | null {
    this.counters.good++;
    const v4 = this.v4Of(addr);
    const text = v4 >= 0 ? null : this.textKey(rule, addr.ip);
    if (v4 < 0 && text === null) return null;
    const t = text === null ? this.trackers.getV4(v4, rule.index) : this.trackers.getText(text);
    if (t === undefined) return null;
    // A successful login forgets the address's history, as banban does.
    if (text === null) this.trackers.deleteV4(v4, rule.index);
    else this.trackers.deleteText(text);
    const key = text ?? v4 * RULE_SLOTS + rule.index;
    if (t.bannedUntil > at) {
      this.counters.unbans++;
      return this.event('unban', rule, key, at, 0, null);
    }
    return null;
  }

  private event(
    type: 'ban' | 'unban',
    rule: Rule,
    key: Key,
    at: number,
    hits: number,
    duration: DurationSeconds,
  ): DetectEvent {
    const target = parseTarget(keyText(key));
    return {
      type,
      target,
      rule: rule.spec.name,
      at,
      hits,
      duration,
      set: rule.spec.set,
      reason: rule.spec.reason ?? rule.spec.name,
    };
  }

  /** The address as an IPv4 number (already parsed by the matcher when it could), else -1. */
  private v4Of(addr: MatchOut): number {
    if (addr.v4 !== undefined && addr.v4 >= 0) return addr.v4;
    return parseIPv4(addr.ip) ?? -1;
  }

  /** The text key of a non-IPv4 address (see `trackers`); null if it cannot be parsed. */
  private textKey(rule: Rule, ip: string): string | null {
    // Cached per rule: floods repeat their addresses, and widening parses bigints.
    let key = rule.textKeys.get(ip);
    if (key === undefined) {
      let text = ip;
      const w = rule.spec.widen6;
      if (w !== undefined) {
        try {
          text = widen(parseTarget(ip), w).text;
        } catch {
          return null;
        }
      }
      key = `${rule.index}|${text}`;
      if (rule.textKeys.size >= TEXT_KEYS_MAX) rule.textKeys.clear();
      // The capture may be a slice of a whole read chunk; a copy keeps the cache from pinning it.
      rule.textKeys.set(` ${ip}`.slice(1), key);
    }
    return key;
  }

  private bannable(rule: Rule, key: Key): boolean {
    if (typeof key === 'number' && rule.ignoreNets.size === 0 && (this.opts.allowlist?.size ?? 0) === 0) {
      // An IPv4 host with no lists to consult: only assertBannable's 127/8 and 0/8 apply, and a
      // flood of new addresses should not pay a bigint parse each.
      const octet = Math.floor(key / RULE_SLOTS) >>> 24;
      return octet !== 127 && octet !== 0;
    }
    try {
      const t = parseTarget(keyText(key));
      assertBannable(t, { allowed: (x) => this.opts.allowlist?.match(x) ?? rule.ignoreNets.match(x) });
      return true;
    } catch {
      return false;
    }
  }

  private rulesFor(source: string): Rule[] {
    let list = this.bySource.get(source);
    if (list === undefined) {
      list = this.rules.filter((r) => r.spec.sources.length === 0 || sourceMatcher(r.spec.sources)(source));
      // Sources are few (paths, journald, syslog listeners); the bound only guards odd callers.
      if (this.bySource.size > 10_000) this.bySource.clear();
      this.bySource.set(source, list);
    }
    return list;
  }
}

function keyText(key: Key): string {
  return typeof key === 'number' ? formatIPv4(Math.floor(key / RULE_SLOTS)) : key.slice(key.indexOf('|') + 1);
}

/** bantime × multiplier^(previous bans), capped at `max`; permanent stays permanent. */
export function escalate(spec: RuleSpec, previousBans: number): DurationSeconds {
  const base = spec.bantime;
  if (base === null) return null;
  const esc = spec.escalation;
  if (esc === undefined || previousBans === 0) return base;
  const grown = base * esc.multiplier ** Math.min(previousBans, MAX_ESCALATION_STEPS);
  if (esc.max === null) return Number.isFinite(grown) ? Math.round(grown) : null;
  return Math.round(Math.min(grown, esc.max));
}

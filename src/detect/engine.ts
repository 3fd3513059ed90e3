import {
  assertBannable,
  formatIPv4,
  parseIPv4,
  parseIPv6,
  parseIPv6Words,
  parseTarget,
  type Target,
  widen,
} from '../core/address.js';
import { Allowlist } from '../core/allowlist.js';
import { type DurationSeconds, MAX_DURATION_SECONDS } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import {
  type CompiledRule,
  compileRule,
  type MatchOut,
  matchedText,
  type RuleMatch,
  V6_WORDS,
} from './compile.js';
import { cutDate } from './date-cut.js';
import { LogTimeParser } from './log-time.js';
import { MultilineStage } from './multiline.js';
import type { LinearMode } from './regex-safety.js';
import type { RuleSpec } from './rule.js';
import { Watchdog } from './rule-watchdog.js';
import { sourceMatcher } from './source-match.js';
import {
  BANNED,
  BANS,
  COUNT,
  FLAGS,
  HEAD,
  META_WORDS,
  SKIPPED,
  TrackerState,
  trackerStateBytes,
} from './tracker-state.js';
import { EXTRA_LIMIT, TrackerTable, trackerTableBytes } from './tracker-table.js';
import type { DetectEvent, LogLine } from './types.js';

export interface EngineOptions {
  /** `log`: windows use the line's own time (replays, `rampart check`); `wall`: the clock. */
  clock: 'log' | 'wall';
  /** Global allowlist: addresses in it are never counted nor banned. */
  allowlist?: Allowlist;
  /** Cap on tracked (rule, address) pairs; the least recently seen are evicted. Default 1,000,000. */
  maxTracked?: number;
  /**
   * Cap on the bytes the tracked pairs may take (key tables and tracker state, worst case): the
   * pair cap is lowered until they fit. Default 128 MiB (`rules.trackerMemory` in rampart.yaml).
   */
  maxTrackedBytes?: number;
  /**
   * Cap on the bytes the key tables and tracker state have in use (resident), counted as they
   * grow: a table or a state that would grow past it does not, and the least recently seen
   * generation of pairs is evicted instead. So an IPv4 flood (12-byte key slots) holds more pairs
   * than an IPv6 one (24 bytes). Unset: only `maxTracked` and `maxTrackedBytes` bound them
   * (`rampart check` sets it, docs/adr/0065).
   */
  maxResidentBytes?: number;
  /** Wall clock, epoch ms (tests inject one). */
  now?: () => number;
  onWarning?: (message: string) => void;
  /** Linear-time demand on user patterns (see regex-safety). Default `prefer`. */
  linear?: LinearMode;
  /** Lines longer than this (characters) are counted as oversized and not matched. Default 16 KiB. */
  maxLineLength?: number;
  /**
   * Time budget of the rules not shipped with rampart (`RuleSpec.trusted` unset) on long lines;
   * `false` turns it off. Defaults: DEFAULT_RULE_BUDGET (docs/adr/0026-rule-time-budget.md).
   */
  ruleBudget?: Partial<RuleBudget> | false;
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
  /** Matches the time budget stopped (the line counted as no match for that rule). */
  overBudget: number;
  /** Long lines rules stopped reading after too many went over budget did not see. */
  overBudgetSkipped: number;
}

/**
 * What a rule may spend on one long line. Lines of at most `watchOver` characters run as they
 * are: V8's backtrack budget already sends exponential matches to its linear engine, and a
 * polynomial one on a short line costs a millisecond or two. A longer line runs under a watchdog
 * that stops the match at `stopMs` (the line then counts as no match for that rule); a match
 * that took more than `slowMs` is a strike, stopped or not. After `strikes` strikes the rule is
 * no longer matched against lines over `watchOver` characters.
 */
export interface RuleBudget {
  slowMs: number;
  stopMs: number;
  watchOver: number;
  strikes: number;
}

/**
 * A linear pattern takes well under 1 ms on a 16 KiB line (measured: docs/adr/0026), so 5 ms is
 * a pattern going super-linear, not a slow machine; 1 KiB is RFC 3164's line limit.
 */
export const DEFAULT_RULE_BUDGET: RuleBudget = { slowMs: 5, stopMs: 50, watchOver: 1024, strikes: 3 };

/** A rule's time-budget state, for metrics. */
export interface RuleBudgetStats {
  rule: string;
  /** Long lines that took more than the budget's `slowMs` (strikes). */
  slowLines: number;
  /** True once the rule no longer reads lines over `watchOver` characters. */
  longLinesOff: boolean;
}

interface Rule {
  compiled: CompiledRule;
  spec: RuleSpec;
  index: number;
  findtimeMs: number;
  ignoreNets: Allowlist;
  /** Where its trackers live: shared by the rules of the same maxretry (the ring's size). */
  state: TrackerState;
  /** The rule's fail2ban date patterns, compiled; undefined = the engine's own date stripping. */
  dates?: RegExp[];
  /** fail2ban's multi-line/session stage, only for rules that need one. */
  multi?: MultilineStage;
  /** EngineOptions.onBelowThreshold for a rule with a fleet threshold; undefined costs one check. */
  belowThreshold?: (rule: string, ip: string, at: number) => void;
  /** Runs long lines under the time budget (rules not shipped with rampart, budget on). */
  watched: boolean;
  /** Long lines over the budget's `slowMs`. */
  strikes: number;
  /** After `strikes` strikes: lines over `watchOver` are no longer matched. */
  longLinesOff: boolean;
  /**
   * Bits of its literals in `prefilterLiterals()`: a line whose mask (from the reader) has none
   * of them cannot match, so the rule is not run. -1 (always run) for a rule without literals or
   * with a multi-line stage (which sees lines its patterns do not match).
   */
  literalBits: number;
  /**
   * Every literal of the rule is printable ASCII and starts with a character no stripped timestamp holds
   * (see STAMP_CHARACTERS): a line the reader found one in has it in the text the rule reads, so
   * the rule need not search again.
   */
  literalsPastStamp: boolean;
}

/**
 * Every character LogTimeParser may strip from the start of a line: `<PRI>`, the RFC 5424
 * version, RFC 3164 and ISO 8601 stamps (digits, separators, month names, T, Z) and the space
 * after. A literal starting with none of them cannot start inside the stripped part.
 */
const STAMP_CHARACTERS = '0123456789<>:.,+-/ TZJanFebMarAprMayJunJulAugSepOctNovDec';

/** Rules per engine (the tracker keys' rule word could hold more; this bounds the engine). */
const RULE_SLOTS = 4096;

const NO_EVENTS: readonly DetectEvent[] = Object.freeze([]);
const DEFAULT_MAX_TRACKED = 1_000_000;
export const DEFAULT_MAX_TRACKED_BYTES = 128 * 1024 * 1024;
export const DEFAULT_MAX_LINE = 16_384;
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

/**
 * Failure times (TrackerState ticks, tenths of a second) a pair's first failure may have to be
 * kept in its key's slot: ±155 days from the first time its state saw, so the value stays under
 * the table's 2^30 - 1. Outside that range the pair takes a record at once.
 */
const PENDING_RANGE = 1 << 27;

/**
 * A pending pair's second failure is kept in its key's `extra` as its time minus the first's plus
 * this (0 = none): within ±14.5 hours of the first, else the pair takes a record (docs/adr/0059).
 */
const SECOND_BIAS = EXTRA_LIMIT / 2;

/** A first failure's time as a tracker table value (odd; slots are stored even), or -1. */
function pendingValue(tick: number): number {
  return tick >= -PENDING_RANGE && tick < PENDING_RANGE ? (tick + PENDING_RANGE) * 2 + 1 : -1;
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
   * One tracker per (rule, address), looked up by (address words, rule index): IPv4 as one word,
   * IPv6 as four, widened where the rule asks. The value is the tracker's slot in its rule's
   * `state` times 2, or for a pair with one failure so far, that failure's time (`pendingValue`).
   */
  private readonly trackers: TrackerTable;
  /** The tracker states, one per ring size (rules of the same maxretry share one). */
  private readonly states: TrackerState[];
  private readonly bySource = new Map<string, Rule[]>();
  private readonly times: LogTimeParser;
  private readonly now: () => number;
  private readonly maxLine: number;
  /** See prefilterLiterals(). */
  private readonly literals: string[] | null;
  private lastLogTime = Number.NaN;
  /** v6Key's result, reused; also where the matchers leave IPv6 words (MatchOut.v6). */
  private readonly v6Words = new Int32Array(4);
  private readonly out: MatchOut = { ip: '', v4: -1, v6: this.v6Words };
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
    overBudget: 0,
    overBudgetSkipped: 0,
  };
  private readonly budget: RuleBudget;
  private watchdog: Watchdog | undefined;
  /** Set by `allocSlot` when it dropped every tracked pair, the caller's own included. */
  private droppedAll = false;

  constructor(
    specs: RuleSpec[],
    private readonly opts: EngineOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.times = new LogTimeParser(this.now);
    this.maxLine = opts.maxLineLength ?? DEFAULT_MAX_LINE;
    this.budget = { ...DEFAULT_RULE_BUDGET, ...(opts.ruleBudget || {}) };
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
    // Validated above. One state per ring size: a slot holds its rule's maxretry - 1 times (the
    // failure that would make maxretry bans instead of being kept).
    const rings = [...new Set(specs.map((s) => s.maxretry - 1))];
    const cap = trackedCap(opts.maxTracked ?? DEFAULT_MAX_TRACKED, opts.maxTrackedBytes, rings);
    // One more slot than the cap: a new tracker's slot is taken before the cap evicts. Under a
    // resident budget, no more than it holds (and one taken when nothing else is left, allocSlot).
    const resident = opts.maxResidentBytes;
    const slots = (r: number) => {
      if (resident === undefined) return cap + 1;
      return Math.min(cap + 1, Math.floor(resident / new TrackerState(r, 0).slotBytes) + 2);
    };
    const states = new Map(rings.map((r) => [r, new TrackerState(r, slots(r))]));
    this.states = [...states.values()];
    this.trackers = new TrackerTable(
      cap,
      (value, rule) => {
        if ((value & 1) === 0) this.rules[rule]!.state.release(value >>> 1);
      },
      resident === undefined ? undefined : { bytes: resident, others: () => this.stateBytes() },
    );
    this.rules = specs.map((spec, index) => ({
      state: states.get(spec.maxretry - 1)!,
      compiled: compileRule(spec, { linear: opts.linear, onWarning: opts.onWarning }),
      spec,
      index,
      findtimeMs: spec.findtime * 1000,
      ignoreNets: new Allowlist(spec.ignoreNets),
      dates: spec.datePatterns?.map((d) => compileDate(spec, d)),
      multi:
        spec.multiline === undefined
          ? undefined
          : new MultilineStage(spec, spec.multiline, { linear: opts.linear, onWarning: opts.onWarning }),
      belowThreshold: spec.fleet !== undefined ? opts.onBelowThreshold : undefined,
      // Multi-line rules keep their own 64 KiB buffer cap: skipping a long line would change
      // what their buffer holds, hence what later lines match (fail2ban's semantics).
      watched: opts.ruleBudget !== false && spec.trusted !== true && spec.multiline === undefined,
      strikes: 0,
      longLinesOff: false,
      literalBits: -1,
      literalsPastStamp: false,
    }));
    this.literals = this.unionOfLiterals();
  }

  /** Compiles every rule's regexes now (a long-running reader: not on the first line it reads). */
  warm(): void {
    for (const r of this.rules) r.compiled.warm();
  }

  /**
   * Classifies one line with every rule that reads its source and returns the bans and unbans it
   * triggers. The returned array is shared when empty: do not mutate it. `literals`: for a line
   * read with `prefilterLiterals()` as its filter, the bits (1 << index) of those it contains;
   * rules none of whose literals are there are not run.
   */
  feed(line: LogLine, literals = -1): DetectEvent[] {
    return this.feedIn(line.text, 0, line.text.length, line.source, literals, line.time);
  }

  /**
   * `feed` of the line `chunk[start, end)` (without its line break), from `source`, at `time`
   * when the source knows it: a reader holding many lines in one string (`forEachLineIn`) passes
   * the line's bounds, and the only string made for it is the part after its timestamp.
   */
  feedIn(
    chunk: string,
    start: number,
    end: number,
    source: string,
    literals = -1,
    time?: number,
  ): DetectEvent[] {
    const c = this.counters;
    c.lines++;
    if (end - start > this.maxLine) {
      c.oversized++;
      return NO_EVENTS as DetectEvent[];
    }
    const stamp = this.times.parse(chunk, start, end);
    const restStart = this.times.restStart;
    const text = restStart === 0 && end === chunk.length ? chunk : chunk.slice(restStart, end);
    let at: number;
    if (this.opts.clock === 'wall') {
      at = this.now();
    } else {
      at = time ?? stamp;
      if (Number.isNaN(at)) at = Number.isNaN(this.lastLogTime) ? this.now() : this.lastLogTime;
      this.lastLogTime = at;
    }
    const rules = this.opts.ignoreSources ? this.rules : this.rulesFor(source);
    let events: DetectEvent[] | undefined;
    const out = this.out;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if ((rule.literalBits & literals) === 0) continue;
      const body = rule.dates ? cutDate(chunk.slice(start, end), rule.dates) : text;
      const kind =
        rule.watched && body.length > this.budget.watchOver
          ? this.classifyWatched(rule, body)
          : rule.multi === undefined
            ? rule.compiled.classify(body, out, rule.literalsPastStamp && literals !== -1)
            : rule.multi.classify(body, source, at, out);
      if (kind === 'none') continue;
      if (kind === 'ignored') {
        c.ignored++;
        continue;
      }
      if (this.opts.onMatch !== undefined)
        this.opts.onMatch({ rule: rule.spec.name, ip: matchedText(out), kind, at });
      const ev = kind === 'fail' ? this.fail(rule, out, at) : this.forgive(rule, out, at);
      if (ev !== null) {
        events ??= [];
        events.push(ev);
      }
    }
    return events ?? (NO_EVENTS as DetectEvent[]);
  }

  /**
   * Literals one of which every line that any rule could act on contains (see
   * CompiledRule.literals), for readers that reject lines before decoding them; null when some
   * rule has none. Only for engines that apply every rule to every line (`ignoreSources`). The
   * order gives the bits of `feed`'s `literals` mask.
   */
  prefilterLiterals(): string[] | null {
    return this.literals === null ? null : [...this.literals];
  }

  /** The union of the rules' literals, each rule's bits in it set; null when some rule has none. */
  private unionOfLiterals(): string[] | null {
    const all: string[] = [];
    for (const r of this.rules) {
      const lits = r.compiled.literals;
      if (lits === undefined || r.dates !== undefined) return null;
      for (const l of lits) if (!all.includes(l)) all.push(l);
    }
    // Past 31 literals the reader sends every line with all bits set: the rules then test it.
    if (all.length <= 31) {
      for (const r of this.rules) {
        if (r.multi !== undefined) continue;
        r.literalBits = 0;
        for (const l of r.compiled.literals!) r.literalBits |= 1 << all.indexOf(l);
        r.literalsPastStamp = r.compiled.literals!.every(
          (l) => l !== '' && !/[^ -~]/.test(l) && !STAMP_CHARACTERS.includes(l[0]!),
        );
      }
    }
    return all;
  }

  /** Counts a line a reader rejected by `prefilterLiterals` without decoding it. */
  skipLine(): void {
    this.counters.lines++;
  }

  /** Time-budget state of each rule the budget watches. */
  ruleBudgetStats(): RuleBudgetStats[] {
    return this.rules
      .filter((r) => r.watched)
      .map((r) => ({ rule: r.spec.name, slowLines: r.strikes, longLinesOff: r.longLinesOff }));
  }

  /** A long line through a rule not shipped with rampart: under the watchdog, 'none' when stopped. */
  private classifyWatched(rule: Rule, body: string): RuleMatch['kind'] {
    const c = this.counters;
    if (rule.longLinesOff) {
      c.overBudgetSkipped++;
      return 'none';
    }
    const out = this.out;
    this.watchdog ??= new Watchdog();
    const { slowMs, stopMs, watchOver, strikes } = this.budget;
    // Timed inside the job: starting the watchdog's thread is not the rule's time.
    let ms = stopMs;
    const done = this.watchdog.run(stopMs, () => {
      const t0 = performance.now();
      const kind = rule.compiled.classify(body, out);
      ms = performance.now() - t0;
      return kind;
    });
    if (ms <= slowMs) return done?.value ?? 'none';
    if (done === undefined) c.overBudget++;
    rule.strikes++;
    const name = `rule "${rule.spec.name}"${rule.spec.origin ? ` (${rule.spec.origin})` : ''}`;
    // Only lengths and times: the line itself is attacker-controlled.
    const what = `a ${body.length}-character line took ${done === undefined ? `over ${stopMs} ms and was not matched` : `${Math.round(ms)} ms`}`;
    if (rule.strikes < strikes) {
      this.opts.onWarning?.(`${name}: ${what} (strike ${rule.strikes} of ${strikes}, budget ${slowMs} ms)`);
    } else if (rule.strikes === strikes) {
      rule.longLinesOff = true;
      this.opts.onWarning?.(
        `${name}: ${what}; after ${strikes} lines over its ${slowMs} ms budget the rule is no longer matched against lines over ${watchOver} characters (its patterns backtrack super-linearly: avoid stacked or nested unbounded repeats such as (.*a){12})`,
      );
    }
    return done?.value ?? 'none';
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
    let words: Int32Array | null = null;
    let value: number | undefined;
    if (v4 >= 0) {
      value = this.trackers.getV4(v4, rule.index);
    } else {
      words = this.v6Key(rule, addr);
      if (words === null) {
        c.skipped++;
        return null;
      }
      value = this.trackers.getV6(words, rule.index);
    }
    const st = rule.state;
    let slot: number;
    if (value === undefined) {
      const bannable = this.bannable(rule, v4, addr.ip, words);
      // A new pair's first failure is kept in its key's slot: no record until a second one (in a
      // flood from many addresses most pairs fail once or twice; docs/adr/0042).
      const first = rule.spec.maxretry > 1 && bannable ? pendingValue(st.tick(at)) : -1;
      if (first >= 0) {
        if (words === null) this.trackers.addV4(v4, rule.index, first);
        else this.trackers.addV6(words, rule.index, first);
        // Fleet-wide counting: the target a ban would name (a widened IPv6 range, say).
        if (rule.belowThreshold !== undefined)
          rule.belowThreshold(rule.spec.name, this.targetOf(rule, v4, addr.ip).text, at);
        return null;
      }
      slot = this.allocSlot(st, true);
      if (!bannable) st.meta[slot * st.stride * 2 + FLAGS] = SKIPPED;
      if (words === null) this.trackers.addV4(v4, rule.index, slot * 2);
      else this.trackers.addV6(words, rule.index, slot * 2);
    } else if ((value & 1) !== 0) {
      const first = (value >>> 1) - PENDING_RANGE;
      const second =
        words === null ? this.trackers.extraV4(v4, rule.index) : this.trackers.extraV6(words, rule.index);
      if (second === 0 && st.ring >= 2 && this.secondPending(rule, v4, words, addr, at, first)) return null;
      // A record as the failures kept in the key's slot would have left it: head 0, their times.
      slot = this.allocSlot(st, false);
      const base = slot * st.stride + META_WORDS;
      st.times[base] = first;
      if (second !== 0) st.times[base + 1] = first + second - SECOND_BIAS;
      st.meta[slot * st.stride * 2 + COUNT] = second !== 0 ? 2 : 1;
      if (!this.droppedAll) {
        if (words === null) this.trackers.setV4(v4, rule.index, slot * 2);
        else this.trackers.setV6(words, rule.index, slot * 2);
      } else if (words === null) this.trackers.addV4(v4, rule.index, slot * 2);
      else this.trackers.addV6(words, rule.index, slot * 2);
    } else slot = value >>> 1;
    const meta = st.meta;
    const record = slot * st.stride;
    const m = record * 2;
    const flags = meta[m + FLAGS]!;
    if (flags !== 0) {
      if ((flags & SKIPPED) !== 0) {
        c.skipped++;
        return null;
      }
      // Banned: failures while the ban lasts do not count; after it, counting starts again.
      if (st.banEnd(slot) > at) return null;
      meta[m + FLAGS] = flags & ~BANNED;
    }
    // Drop failures older than the window, then append. The ring keeps maxretry - 1 times: the
    // failure that makes maxretry bans, and a ban empties the ring, so it is never kept: a
    // record a word smaller (docs/adr/0046).
    const times = st.times;
    const base = record + META_WORDS;
    const size = st.ring;
    let head = meta[m + HEAD]!;
    let count = meta[m + COUNT]!;
    const now = st.tick(at);
    const horizon = st.tick(at - rule.findtimeMs);
    if (count > 0) {
      const last = head + count - 1;
      // When even the newest is out of the window, all are: one read instead of a walk.
      if (times[base + (last >= size ? last - size : last)]! <= horizon) count = 0;
    }
    while (count > 0 && times[base + head]! <= horizon) {
      head = head + 1 === size ? 0 : head + 1;
      count--;
    }
    meta[m + HEAD] = head;
    if (count < size) {
      const tail = head + count;
      times[base + (tail >= size ? tail - size : tail)] = now;
      meta[m + COUNT] = count + 1;
      // Fleet-wide counting: the target a ban would name (a widened IPv6 range, say).
      if (rule.belowThreshold !== undefined)
        rule.belowThreshold(rule.spec.name, this.targetOf(rule, v4, addr.ip).text, at);
      return null;
    }
    // The maxretry-th failure in the window.
    count++;
    // Re-check at ban time: the allowlist may have grown since the address was first seen.
    if (!this.bannable(rule, v4, addr.ip, words)) {
      meta[m + FLAGS] |= SKIPPED;
      meta[m + COUNT] = size;
      c.skipped++;
      return null;
    }
    meta[m + COUNT] = 0;
    const bans = meta[m + BANS]!;
    const duration = escalate(rule.spec, bans);
    meta[m + BANS] = Math.min(bans + 1, MAX_ESCALATION_STEPS);
    st.setBanEnd(slot, duration === null ? Number.POSITIVE_INFINITY : at + duration * 1000);
    meta[m + FLAGS] |= BANNED;
    c.bans++;
    return this.event('ban', rule, v4, addr.ip, at, count, duration);
  }

  /**
   * A record slot from `st`. Under `maxResidentBytes`, when the slot would be one never used
   * before and the budget has no room for it, the oldest generation of pairs goes first, then if
   * that freed no slot of this state, the other (every pair: `droppedAll`, so a caller whose pair
   * was in the table adds it again). Only a state with no slot in use at all then takes one past
   * the budget.
   */
  private allocSlot(st: TrackerState, isNew: boolean): number {
    this.droppedAll = false;
    const budget = this.opts.maxResidentBytes;
    if (budget !== undefined && st.exhausted && this.residentBytes() + st.slotBytes > budget) {
      this.trackers.evictOldest();
      if (st.exhausted && this.residentBytes() + st.slotBytes > budget && this.trackers.size > 0) {
        this.trackers.evictOldest();
        this.droppedAll = !isNew;
      }
    }
    return st.alloc();
  }

  /** Bytes the key tables and tracker states have in use (see `maxResidentBytes`). */
  residentBytes(): number {
    return this.trackers.residentBytes() + this.stateBytes();
  }

  private stateBytes(): number {
    let sum = 0;
    for (const st of this.states) sum += st.residentBytes();
    return sum;
  }

  /**
   * A pending pair's second failure (first at tick `first`), kept in its key's slot as the record
   * path below would leave it: the first dropped if out of the window (then pending again, with
   * this time), else this time beside it as `extra`. Only for rings of two or more, where a
   * second failure cannot ban. False when a time does not fit: the pair then takes a record.
   */
  private secondPending(
    rule: Rule,
    v4: number,
    words: Int32Array | null,
    addr: MatchOut,
    at: number,
    first: number,
  ): boolean {
    const st = rule.state;
    const now = st.tick(at);
    let value: number;
    let extra = 0;
    if (first <= st.tick(at - rule.findtimeMs)) {
      value = pendingValue(now);
      if (value < 0) return false;
    } else {
      extra = now - first + SECOND_BIAS;
      if (extra <= 0 || extra >= EXTRA_LIMIT) return false;
      value = pendingValue(first);
    }
    if (words === null) this.trackers.setV4(v4, rule.index, value, extra);
    else this.trackers.setV6(words, rule.index, value, extra);
    if (rule.belowThreshold !== undefined)
      rule.belowThreshold(rule.spec.name, this.targetOf(rule, v4, addr.ip).text, at);
    return true;
  }

  private forgive(rule: Rule, addr: MatchOut, at: number): DetectEvent | null {
    this.counters.good++;
    const v4 = this.v4Of(addr);
    const words = v4 >= 0 ? null : this.v6Key(rule, addr);
    if (v4 < 0 && words === null) return null;
    const value =
      words === null ? this.trackers.getV4(v4, rule.index) : this.trackers.getV6(words, rule.index);
    if (value === undefined) return null;
    // A successful login forgets the address's history, as banban does.
    if (words === null) this.trackers.deleteV4(v4, rule.index);
    else this.trackers.deleteV6(words, rule.index);
    // A first failure only (in the key's slot): never banned, no record to free.
    if ((value & 1) !== 0) return null;
    const slot = value >>> 1;
    const st = rule.state;
    const banned = (st.meta[slot * st.stride * 2 + FLAGS]! & BANNED) !== 0 && st.banEnd(slot) > at;
    st.release(slot);
    if (banned) {
      this.counters.unbans++;
      return this.event('unban', rule, v4, addr.ip, at, 0, null);
    }
    return null;
  }

  private event(
    type: 'ban' | 'unban',
    rule: Rule,
    v4: number,
    ip: string,
    at: number,
    hits: number,
    duration: DurationSeconds,
  ): DetectEvent {
    const target = this.targetOf(rule, v4, ip);
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
    return addr.v4 === V6_WORDS ? -1 : (parseIPv4(addr.ip) ?? -1);
  }

  /**
   * The tracker key words of a non-IPv4 address (see `trackers`), masked to the rule's `widen6`;
   * null if it cannot be parsed. The array is reused by the next call.
   */
  private v6Key(rule: Rule, addr: MatchOut): Int32Array | null {
    const words = this.v6Words;
    // The matcher's fast path already wrote the words (V6_WORDS). Otherwise `ip` is canonical
    // IPv6 (the matcher turned mapped IPv4 into IPv4): hex groups, parsed without strings or
    // bigints; other spellings take the bigint parser.
    if (addr.v4 !== V6_WORDS && !parseIPv6Words(addr.ip, words)) {
      const v = parseIPv6(addr.ip);
      if (v === null) return null;
      for (let i = 0; i < 4; i++) words[i] = Number((v >> BigInt(96 - 32 * i)) & 0xffffffffn) | 0;
    }
    const keep = rule.spec.widen6 ?? 128;
    for (let i = 0; i < 4; i++) {
      const bits = keep - 32 * i;
      if (bits <= 0) words[i] = 0;
      else if (bits < 32) words[i] = words[i]! & ~(0xffffffff >>> bits);
    }
    return words;
  }

  /** What a tracker bans: the IPv4 host, or the IPv6 address widened where the rule asks. */
  private targetOf(rule: Rule, v4: number, ip: string): Target {
    if (v4 >= 0) return parseTarget(formatIPv4(v4));
    const t = parseTarget(ip);
    const w = rule.spec.widen6;
    return w === undefined ? t : widen(t, w);
  }

  /** `words`: the IPv6 tracker key (v6Key), when v4 < 0. */
  private bannable(rule: Rule, v4: number, ip: string, words: Int32Array | null = null): boolean {
    if (rule.ignoreNets.size === 0 && (this.opts.allowlist?.size ?? 0) === 0) {
      // No lists to consult: only assertBannable's fixed checks apply, and a flood of new
      // addresses should not pay a bigint parse (and an exception) each. IPv4: 127/8 and 0/8.
      if (v4 >= 0) {
        const octet = v4 >>> 24;
        return octet !== 127 && octet !== 0;
      }
      // IPv6, widened to /w: at most /32 wide, and not overlapping ::1 or :: (the range starts
      // above ::1 when its first address, the masked key, does).
      if (words !== null) {
        const w = rule.spec.widen6 ?? 128;
        if (w < 32) return false;
        return words[0] !== 0 || words[1] !== 0 || words[2] !== 0 || words[3]! >>> 0 > 1;
      }
    }
    return this.bannableListed(rule, v4, ip);
  }

  /**
   * `bannable` against the allowlists, out of line: inlined into the failure path, it took the
   * inlining budget the table lookup needs (docs/adr/0046).
   */
  private bannableListed(rule: Rule, v4: number, ip: string): boolean {
    try {
      const t = this.targetOf(rule, v4, ip);
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

/**
 * The pair cap: `maxTracked`, lowered until the key tables and tracker state fit `bytes`. There is
 * one state per ring size (`rings`: the rules' distinct maxretry); states never shrink, so each
 * may have grown to the cap in turn and the worst case counts them all full. Halving then
 * stepping up keeps this a few dozen evaluations.
 */
export function trackedCap(maxTracked: number, bytes: number | undefined, rings: readonly number[]): number {
  const cost = (n: number) =>
    trackerTableBytes(n) + rings.reduce((sum, r) => sum + trackerStateBytes(n + 1, r), 0);
  const budget = bytes ?? DEFAULT_MAX_TRACKED_BYTES;
  let cap = Math.max(2, Math.floor(maxTracked));
  while (cap > 2 && cost(cap) > budget) cap = Math.max(2, Math.floor(cap / 2));
  // Back up in eighths of the last step: the table sizes are powers of two, so the fit is loose.
  for (let step = Math.max(1, Math.floor(cap / 8)); step >= 1 && cap < maxTracked; ) {
    if (cap + step <= maxTracked && cost(cap + step) <= budget) cap += step;
    else step = Math.floor(step / 2);
  }
  return cap;
}

/** bantime × multiplier^(previous bans), capped at `max`; permanent stays permanent. */
export function escalate(spec: RuleSpec, previousBans: number): DurationSeconds {
  const base = spec.bantime;
  if (base === null) return null;
  const esc = spec.escalation;
  if (esc === undefined || previousBans === 0) return base;
  const grown = base * esc.multiplier ** Math.min(previousBans, MAX_ESCALATION_STEPS);
  // Past the longest finite ban the hub accepts, a ban is permanent (as the hub's own escalation
  // says): a longer finite duration would have the report refused and the ban lost.
  if (esc.max === null) return grown <= MAX_DURATION_SECONDS ? Math.round(grown) : null;
  return Math.round(Math.min(grown, esc.max, MAX_DURATION_SECONDS));
}

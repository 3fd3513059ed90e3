import type { DurationSeconds } from '../core/duration.js';

/**
 * A detection rule after loading, whatever file format it came from (native YAML, fail2ban
 * filter.d + jail, syslog-blacklist.conf, banban YAML). Loaders produce this; the engine compiles
 * it. Patterns are JavaScript regex source in which these placeholders stand for the address:
 * `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `{IP_NUMBER}`, or a named group `(?<ip>...)`. Loaders
 * translate everything else of their format (Python `(?P<n>`, `%(x)s`, `<F-USER>`) beforehand.
 */
export interface RuleSpec {
  name: string;
  /** Source names or globs the rule reads (`/var/log/auth.log`, `journald`); empty = every source. */
  sources: string[];
  /** A line matching any of these counts as a failure for the captured address. */
  patterns: string[];
  /** A line matching any of these is skipped even if a pattern matches. */
  ignore: string[];
  /** A line matching any of these forgives the captured address (count cleared, unban if banned). */
  good: string[];
  /** fail2ban's prefregex: must match first; its `<F-CONTENT>` part is what `patterns` see. */
  prefregex?: string;
  /** Hits needed within `findtime` seconds to ban. Defaults follow fail2ban: 5 in 10m for 10m. */
  maxretry: number;
  findtime: number;
  bantime: DurationSeconds;
  /** Repeat offenders: bantime × multiplier^(previous bans), capped at `max`. */
  escalation?: { multiplier: number; max: DurationSeconds };
  /** Widen IPv6 hosts to this prefix (64 is typical) before counting and banning. */
  widen6?: number;
  /** Networks this rule never bans (on top of the global allowlist). */
  ignoreNets: string[];
  /** Logical set / xt_recent target the ban goes to. */
  set: string;
  /** Drop the address's existing connections after a ban (banban's resetconns). */
  resetConnections?: boolean;
  /** Free text for the decision's reason; defaults to the rule name. */
  reason?: string;
  /** Where it was loaded from, for error messages (`file:line`). */
  origin?: string;
  /**
   * Shipped with rampart (`rules/*.yaml`): anchored, reviewed and fuzzed against hostile lines,
   * so exempt from the engine's time budget (EngineOptions `ruleBudget`).
   */
  trusted?: boolean;
  /**
   * Optional literals: a line containing none of them is skipped without running any regex
   * (e.g. `sshd`). A cheap filter for floods; omit it when unsure.
   */
  prefilter?: string[];
  /**
   * fail2ban's date patterns (JavaScript regex sources): for this rule the engine cuts the first
   * date they find out of the whole line, as fail2ban does, instead of stripping a leading date
   * with the blank after it (filters such as exim's expect that blank). Set by the jail loader.
   */
  datePatterns?: string[];
  /**
   * fail2ban's multi-line semantics (a `maxlines` buffer, `<F-MLFID>` sessions), for filters that
   * need them. When set, the engine classifies lines with this instead of `patterns`/`ignore`/
   * `good`, which stay as a single-line approximation for tools that read rules line by line.
   */
  multiline?: MultilineSpec;
  /**
   * Fleet-wide counting (docs/detection.md "Fleet-wide counting"): when set, the agent sends the
   * hub this rule's failures below `maxretry`, and the hub bans an address whose hits across the
   * fleet reach `fleet.maxretry` within `fleet.findtime` seconds. The hub's own config decides the
   * threshold it applies; this is the default it ships with for built-in rules.
   */
  fleet?: FleetThreshold;
}

/**
 * What src/detect/multiline.ts runs. Patterns are JavaScript sources with address placeholders;
 * the named groups `mlfid`, `nofail`, `mlfforget`, `mlfgained`, `user` and `skiplinesN` carry
 * fail2ban's meaning (see multiline.ts).
 */
export interface MultilineSpec {
  /** Lines buffered per source (fail2ban's `maxlines`); above 1, `^`/`$` match at line ends. */
  maxlines: number;
  /** Must match first; its `content` group is what `failregex` searches. */
  prefregex?: string;
  /** Tried in order; the first that matches decides. */
  failregex: string[];
  ignoreregex: string[];
  /** Sessions kept per rule (default 10,000) and their lifetime in log seconds (default 300). */
  sessions?: number;
  sessionTtl?: number;
}

/** A fleet-wide threshold: `maxretry` hits across the fleet within `findtime` seconds. */
export interface FleetThreshold {
  maxretry: number;
  findtime: number;
}

export const RULE_DEFAULTS = {
  maxretry: 5,
  findtime: 600,
  bantime: 600,
  set: 'blocklist',
} as const;

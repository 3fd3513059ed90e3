import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tryParseTarget } from '../core/address.js';
import { type DurationSeconds, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import type { RuleSpec } from '../detect/rule.js';
import { DEFAULT_DATE_PATTERN } from './fail2ban-date.js';
import { readFail2banFilter } from './fail2ban-filter.js';
import { type Fail2banConfig, readFail2banConfig } from './fail2ban-ini.js';

export interface Fail2banJailOptions {
  /** Where filters live; default `filter.d` next to jail.conf. */
  filterDir?: string;
  /** Load disabled jails too (default: only `enabled = true`). */
  includeDisabled?: boolean;
  /** Logical set for every rule; default `blocklist`. */
  set?: string;
}

/** One jail: its rule when its filter loaded, or the error that stopped it. */
export interface Fail2banJail {
  name: string;
  enabled: boolean;
  filter: string;
  filterOptions: Record<string, string>;
  rule?: RuleSpec;
  error?: ConfigError;
  /** What was approximated or left out (the filter's notes, unusable ignoreip entries...). */
  notes: string[];
  /** For a systemd-backend jail: the journal matches it reads (the jail's, else its filter's). */
  journalmatch?: string[];
}

const NOT_JAILS = new Set(['INCLUDES', 'DEFAULT', 'Definition', 'Init']);

/**
 * Reads fail2ban's jails as fail2ban does (`jail.conf`, `jail.d/*.conf`, `jail.local`,
 * `jail.d/*.local`, with their includes such as paths-debian.conf) and loads each enabled jail's
 * filter with the jail's options: `filter = sshd[mode=aggressive]`, `maxretry`, `findtime`,
 * `bantime`, `bantime.increment`/`factor`/`maxtime` (escalation), `ignoreip`, `logpath` (or
 * `journald` when the backend is systemd). A jail whose filter cannot load carries its error;
 * the others still load. Errors in the jail files themselves throw.
 */
export function loadFail2banJails(
  jailConf = '/etc/fail2ban/jail.conf',
  opts: Fail2banJailOptions = {},
): Fail2banJail[] {
  const dir = dirname(jailConf);
  const base = jailConf.replace(/\.conf$/, '');
  const dotD = `${base}.d`;
  const inDotD = (ext: string) =>
    existsSync(dotD)
      ? readdirSync(dotD)
          .filter((f) => f.endsWith(ext))
          .sort()
          .map((f) => join(dotD, f))
      : [];
  const files = [jailConf, ...inDotD('.conf'), `${base}.local`, ...inDotD('.local')].filter(existsSync);
  const cfg = readFail2banConfig(files);
  const filterDir = opts.filterDir ?? join(dir, 'filter.d');
  const jails: Fail2banJail[] = [];
  for (const name of cfg.sections()) {
    if (NOT_JAILS.has(name) || name.startsWith('KNOWN/')) continue;
    const enabled = isTrue(cfg.get(name, 'enabled'));
    if (!enabled && !opts.includeDisabled) continue;
    jails.push(loadJail(cfg, name, enabled, filterDir, opts));
  }
  return jails;
}

function loadJail(
  cfg: Fail2banConfig,
  name: string,
  enabled: boolean,
  filterDir: string,
  opts: Fail2banJailOptions,
) {
  const at = (key: string) => {
    const e = cfg.raw(name, key);
    return { file: e?.file, line: e?.line, key: `${name}.${key}` };
  };
  const spec = parseFilterSpec(cfg.get(name, 'filter') ?? name, at('filter'));
  const jail: Fail2banJail = { name, enabled, filter: spec.name, filterOptions: spec.options, notes: [] };
  const backend = cfg.get(name, 'backend') ?? 'auto';
  const journal = backend.startsWith('systemd');
  const vars = { ...spec.options };
  // fail2ban switches filters to their journal prefix when the backend is systemd.
  if (journal && vars.logtype === undefined) vars.logtype = 'journal';
  // Mistakes in the jail itself throw; only the filter's own problems stay with the jail.
  const maxretry = positiveInt(cfg.get(name, 'maxretry'), at('maxretry'));
  const findtime = seconds(cfg.get(name, 'findtime'), at('findtime'));
  const bantimeText = cfg.get(name, 'bantime');
  const bantime = bantimeText === undefined ? undefined : duration(bantimeText, at('bantime'));
  try {
    const loaded = readFail2banFilter(join(filterDir, `${spec.name}.conf`), {
      vars,
      name,
      sources: journal ? ['journald'] : logPaths(cfg.get(name, 'logpath')),
      maxretry,
      findtime,
      bantime,
      set: opts.set,
    });
    jail.rule = loaded.rule;
    if (journal) {
      const own = cfg.get(name, 'journalmatch');
      jail.journalmatch = own !== undefined ? own.split(/\s+/).filter((t) => t !== '') : loaded.journalmatch;
      // They become journalctl arguments: only FIELD=value terms and `+` (never an option).
      const bad = jail.journalmatch.find((t) => !/^(?:[A-Z0-9_]+=.*|\+)$/.test(t));
      if (bad !== undefined) {
        throw new ConfigError(
          `journalmatch term ${JSON.stringify(bad)} is not FIELD=value or +`,
          at('journalmatch'),
        );
      }
      // Lines of the journal source started for these matches carry this label (see the jail set).
      if (jail.journalmatch.length > 0) jail.rule.sources = [journalLabel(jail.journalmatch)];
    }
    // The engine cuts the date as fail2ban does for this rule (journal messages carry none).
    if (!journal) jail.rule.datePatterns = loaded.datePatterns ?? [DEFAULT_DATE_PATTERN];
    jail.notes.push(...loaded.notes);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    jail.error = err;
    return jail;
  }
  const rule = jail.rule!;
  if (isTrue(cfg.get(name, 'bantime.increment'))) {
    // fail2ban's default formula: bantime × 2^(bans) × factor, capped at bantime.maxtime.
    const factor = Number(cfg.get(name, 'bantime.factor') ?? '1');
    const max = cfg.get(name, 'bantime.maxtime');
    rule.escalation = {
      multiplier: 2 * (Number.isFinite(factor) && factor > 0 ? factor : 1),
      max: max ? duration(max, at('bantime.maxtime')) : null,
    };
  }
  for (const entry of (cfg.get(name, 'ignoreip') ?? '').split(/[\s,]+/).filter((x) => x !== '')) {
    const t = tryParseTarget(entry);
    if (t) rule.ignoreNets.push(t.text);
    else
      jail.notes.push(`ignoreip ${entry} is not an address or CIDR (rampart never resolves names): skipped`);
  }
  return jail;
}

type At = { file?: string; line?: number; key: string };

/** `sshd[mode=aggressive, publickey="any"]` → name and options. */
export function parseFilterSpec(
  text: string,
  at: At = { key: 'filter' },
): { name: string; options: Record<string, string> } {
  const m = /^\s*([\w.-]+)\s*(?:\[(.*)\])?\s*$/s.exec(text.split('\n')[0]!);
  if (!m)
    throw new ConfigError(
      `filter must look like name or name[key=value, ...], not ${JSON.stringify(text)}`,
      at,
    );
  const options: Record<string, string> = {};
  const body = m[2] ?? '';
  const re = /\s*([\w.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^,]*))\s*(?:,|$)/gy;
  let pos = 0;
  for (let o = re.exec(body); o && o[0] !== ''; o = re.exec(body)) {
    options[o[1]!.toLowerCase()] = (o[2] ?? o[3] ?? o[4] ?? '').trim();
    pos = re.lastIndex;
  }
  if (body.slice(pos).trim() !== '') throw new ConfigError(`cannot read filter options "${body}"`, at);
  return { name: m[1]!, options };
}

function logPaths(value: string | undefined): string[] {
  // `logpath = /var/log/x.log tail`: the optional head/tail word is fail2ban's start position.
  return (value ?? '')
    .split('\n')
    .map((l) => l.trim().replace(/\s+(?:head|tail)$/, ''))
    .filter((l) => l !== '');
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(?:true|yes|on|1)$/i.test(v.trim());
}

function positiveInt(v: string | undefined, at: At): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError(`expected a positive whole number, got "${v}"`, at);
  return n;
}

function duration(v: string, at: At): DurationSeconds {
  try {
    return parseDuration(v.trim(), at.key);
  } catch (err) {
    throw new ConfigError((err as Error).message, at, { cause: err });
  }
}

function seconds(v: string | undefined, at: At): number | undefined {
  if (v === undefined) return undefined;
  const d = duration(v, at);
  if (d === null) throw new ConfigError('findtime cannot be permanent', at);
  return d;
}

/** What `rampart agent --fail2ban-jails DIR` runs: the enabled jails' rules and the logs they read. */
export interface Fail2banJailSet {
  rules: RuleSpec[];
  /** The jails' logpaths (files and globs) to follow; journald jails read the journal instead. */
  paths: string[];
  /** One line per jail that did not load or was approximated, for the operator. */
  warnings: string[];
  /**
   * Journal readers the systemd-backend jails need: one per distinct `journalmatch`, whose lines
   * carry `label` as their source (the jails' rules read that source).
   */
  journals: { label: string; matches: string[] }[];
}

/** The source label of a journal reader for these matches. */
export function journalLabel(matches: string[]): string {
  return `journald:${matches.join(' ')}`;
}

/**
 * Loads `DIR/jail.conf` (+ jail.d, jail.local) with `DIR/filter.d`, as fail2ban started with
 * `-c DIR` would. A jail whose filter cannot load is a warning, as in fail2ban where it does not
 * start; a mistake in the jail files throws.
 */
export function loadFail2banJailSet(dir: string): Fail2banJailSet {
  const jailConf = join(dir, 'jail.conf');
  if (!existsSync(jailConf))
    throw new ConfigError(`no jail.conf in ${dir} (give the fail2ban configuration folder)`, {
      file: jailConf,
    });
  const set: Fail2banJailSet = { rules: [], paths: [], warnings: [], journals: [] };
  for (const jail of loadFail2banJails(jailConf)) {
    if (jail.error) {
      set.warnings.push(`jail ${jail.name} not loaded: ${jail.error.message}`);
      continue;
    }
    set.rules.push(jail.rule!);
    const m = jail.journalmatch;
    if (m !== undefined && m.length > 0) {
      const label = journalLabel(m);
      if (!set.journals.some((j) => j.label === label)) set.journals.push({ label, matches: m });
    } else {
      for (const p of jail.rule!.sources) if (p !== 'journald' && !set.paths.includes(p)) set.paths.push(p);
    }
    for (const note of jail.notes) set.warnings.push(`jail ${jail.name}: ${note}`);
  }
  return set;
}

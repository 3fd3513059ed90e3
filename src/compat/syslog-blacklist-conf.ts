import { readConfigText } from '../core/config-file.js';
import { type DurationSeconds, parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { RULE_DEFAULTS, type RuleSpec } from '../detect/rule.js';
import { anchorAfterHost, translateRegex } from './regex-translate.js';

export interface SyslogBlacklistOptions {
  /** The ipset the original fills (`--blacklist=NAME`); default `blacklist`. */
  set?: string;
  /** Ban length for a section header without a time (the original's `--blocked`, default 1h). */
  defaultBantime?: DurationSeconds;
  sources?: string[];
}

const HEADER = /^\[([^\]]+)\]\s*(\S+)?\s*(?:#.*)?$/;
const ADDRESS = /\{IP_NUMBER\}|\(\?<ip>/;

/** Reads `/etc/syslog-blacklist.conf`; see `parseSyslogBlacklistConf`. */
export function loadSyslogBlacklistConf(file: string, opts: SyslogBlacklistOptions = {}): RuleSpec[] {
  return parseSyslogBlacklistConf(readConfigText(file), file, opts);
}

/**
 * syslog-blacklist's config: `[name] 12h` headers (a trailing `# comment` allowed), each followed
 * by Perl regex lines in which `{IP_NUMBER}` stands for the address; `#` lines and blank lines
 * are skipped. One rule per section: a single matching line bans (maxretry 1) for the section's
 * time. Errors name the file and line.
 */
export function parseSyslogBlacklistConf(
  text: string,
  file: string,
  opts: SyslogBlacklistOptions = {},
): RuleSpec[] {
  const rules: RuleSpec[] = [];
  let current: (RuleSpec & { line: number }) | undefined;
  const finish = () => {
    if (!current) return;
    if (current.patterns.length === 0) {
      throw new ConfigError(`section [${current.name}] has no pattern lines`, { file, line: current.line });
    }
    const { line: _line, ...rule } = current;
    rules.push(rule);
  };
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = { file, line: i + 1 };
    const raw = lines[i]!;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (trimmed.startsWith('[')) {
      const m = HEADER.exec(trimmed);
      if (!m) throw new ConfigError('a section header looks like "[name] 12h"', where);
      finish();
      const name = m[1]!.trim();
      if (rules.some((r) => r.name === name)) throw new ConfigError(`section [${name}] appears twice`, where);
      let bantime: DurationSeconds;
      try {
        bantime =
          m[2] === undefined
            ? opts.defaultBantime !== undefined
              ? opts.defaultBantime
              : 3600
            : parseDuration(m[2]);
      } catch (err) {
        throw new ConfigError((err as Error).message, { ...where, key: name }, { cause: err });
      }
      current = {
        line: i + 1,
        name,
        sources: opts.sources ?? [],
        patterns: [],
        ignore: [],
        good: [],
        maxretry: 1,
        findtime: RULE_DEFAULTS.findtime,
        bantime,
        ignoreNets: [],
        set: opts.set ?? 'blacklist',
        reason: name,
        origin: `${file}:${i + 1}`,
      };
      continue;
    }
    if (!current) throw new ConfigError('pattern line before the first [section] header', where);
    if (!ADDRESS.test(trimmed)) {
      throw new ConfigError('pattern has no {IP_NUMBER} (the address to blacklist)', {
        ...where,
        key: current.name,
      });
    }
    let js: string;
    try {
      js = anchorAfterHost(translateRegex(trimmed, 'perl'));
      new RegExp(js.replace(/\{IP_NUMBER\}/g, 'x'));
    } catch (err) {
      throw new ConfigError(
        `cannot use pattern: ${(err as Error).message}`,
        { ...where, key: current.name },
        { cause: err },
      );
    }
    current.patterns.push(js);
  }
  finish();
  if (rules.length === 0) throw new ConfigError('no [section] with patterns', { file });
  return rules;
}

import { LogTimeParser } from '../detect/log-time.js';
import type { LogLine } from '../detect/types.js';
import { translateRegex, UntranslatableRegex } from './regex-translate.js';

const MONTHS =
  'Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?';
const DAYS = 'Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?';

/** strptime directives fail2ban accepts in `datepattern`, as regex text. */
const DIRECTIVES: Record<string, string> = {
  Y: String.raw`\d{4}`,
  ExY: String.raw`(?:19|20)\d{2}`,
  y: String.raw`\d{2}`,
  Exy: String.raw`\d{2}`,
  m: '(?:1[0-2]|0?[1-9])',
  Exm: '(?:1[0-2]|0?[1-9])',
  d: String.raw`(?:3[01]|[12]\d|0?[1-9])`,
  Exd: String.raw`(?:3[01]|[12]\d|0?[1-9])`,
  e: String.raw`\s?\d{1,2}`,
  H: String.raw`(?:2[0-3]|[01]?\d)`,
  k: String.raw`\s?\d{1,2}`,
  I: '(?:1[0-2]|0?[1-9])',
  l: String.raw`\s?\d{1,2}`,
  M: String.raw`[0-5]?\d`,
  ExM: String.raw`[0-5]?\d`,
  S: String.raw`(?:60|[0-5]?\d)`,
  f: String.raw`\d+`,
  z: String.raw`(?:Z|[+-]\d{2}(?::?\d{2})?)`,
  Z: '[A-Z]{3,5}',
  b: `(?:${MONTHS})`,
  B: `(?:${MONTHS})`,
  a: `(?:${DAYS})`,
  A: `(?:${DAYS})`,
  p: '[AaPp][Mm]',
  j: String.raw`\d{3}`,
  s: String.raw`\d{9,11}`,
};

/** fail2ban's `{DATE}`: the common formats its default templates know. */
const GENERIC_DATE = [
  // ISO 8601 / RFC 5424 / fail2ban's own `2026-01-01 12:00:00,123`
  String.raw`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?`,
  // nginx error log `2026/01/01 12:00:00`, stunnel `2026.01.01 12:00:00`
  String.raw`\d{4}[/.]\d{2}[/.]\d{2} \d{2}:\d{2}:\d{2}`,
  // Apache access `01/Jan/2026:12:00:00 +0000`
  String.raw`\d{2}/(?:${MONTHS})/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)?(?: [+-]\d{4})?`,
  // Apache error / ctime `Sat Jan 01 12:00:00(.123) 2026`, syslog `Jan  1 12:00:00`
  // (monit puts the zone first: `PDT Apr 16 21:05:29`)
  String.raw`(?:(?:${DAYS}|[A-Z]{3,4}) )?(?:${MONTHS}) ?\s?\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?`,
  // `01-Jan-2026 12:00:00`
  String.raw`\d{2}-(?:${MONTHS})-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: [+-]\d{4})?`,
  // `Oct 27 2015 12:35:40` (macOS screensharingd)
  String.raw`(?:${MONTHS}) \d{1,2} \d{4} \d{2}:\d{2}:\d{2}`,
  // `11-06-2013 02:09:40` (3proxy, Domino)
  String.raw`\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}`,
  // epoch with fraction, as in `[1356389000.123]`
  String.raw`\d{10}\.\d+`,
].join('|');

/**
 * fail2ban's `datepattern` as JavaScript regex sources, one per listed alternative; null when the
 * filter leaves dates to the defaults. fail2ban cuts the matched date out of the line before the
 * filter's regexes see it (only group 1 when the pattern has a group), so a consumer must do the
 * same: see `cutDate`. `{^LN-BEG}` anchors at the line start; `EPOCH`, `TAI64N` and `{DATE}` map
 * to fixed forms; alternatives marked `()**` (fail2ban's "this line has no date") are left out.
 * Throws UntranslatableRegex for what cannot be mapped.
 */
export function translateDatePattern(value: string | undefined): string[] | null {
  if (value === undefined || value.trim() === '') return null;
  const out: string[] = [];
  for (let line of value.split('\n').map((l) => l.trim())) {
    if (line === '' || line.endsWith('()**')) continue;
    let anchor = '';
    if (line.startsWith('{^LN-BEG}')) {
      // fail2ban lets up to two non-word characters precede a line-start date (`[2024-...`).
      anchor = String.raw`(?<=^\W{0,2})`;
      line = line.slice('{^LN-BEG}'.length);
    }
    const special = line.toUpperCase();
    if (special === '' || special === 'ISO8601') out.push(`${anchor}(?:${GENERIC_DATE})`);
    else if (special === 'EPOCH') out.push(String.raw`${anchor}\d{10}(?:\.\d+)?`);
    else if (special === 'LEPOCH') out.push(String.raw`${anchor}\d{13}`);
    else if (special === 'TAI64N') out.push(`${anchor}@[0-9a-f]{24}`);
    else {
      // fail2ban matches patterns with names in them (%a %A %b %B %p %c) ignoring case: `sept.`.
      const caseless = /(?:^|[^%])(?:%%)*%[aAbBpc]/.test(line) ? '(?i)' : '';
      out.push(anchor + translateRegex(caseless + expandDirectives(line), 'python'));
    }
  }
  return out.length > 0 ? out : null;
}

function expandDirectives(p: string): string {
  // Back-references in date patterns (`(?P=_sep)`) only tie separators together: loosen them.
  // Named groups must not become "group 1", which marks the part to cut.
  const loosened = p.replace(/\(\?P=\w+\)/g, '[-/.]').replace(/\(\?P<\w+>/g, '(?:');
  return loosened.replace(/\{DATE\}|%(Ex[YymdM]|[%a-zA-Z])/g, (m, d: string | undefined) => {
    if (m === '{DATE}') return `(?:${GENERIC_DATE})`;
    if (d === '%') return '%';
    const r = DIRECTIVES[d!];
    if (r === undefined) throw new UntranslatableRegex(`datepattern directive %${d} is not supported`);
    return r;
  });
}

/** The default date forms fail2ban looks for when a filter names none (anywhere in the line). */
export const DEFAULT_DATE_PATTERN = `(?:${GENERIC_DATE})`;

export { cutDate } from '../detect/date-cut.js';

/** Compiles date pattern sources for `cutDate` (with match indices). */
export function compileDatePatterns(sources: string[] | null): RegExp[] {
  return (sources ?? [DEFAULT_DATE_PATTERN]).map((s) => new RegExp(s, 'd'));
}

/**
 * What a loaded filter needs in front of the engine: the date cut out exactly as fail2ban does
 * (only the date, so the blank after it stays: exim's `^(?: \[\d+\])? …` and common.conf's
 * `__prefix_line` expect it, and `[Sat Jun 01 …] [error] …` becomes `[] [error] …`), and the
 * line's time passed as `LogLine.time`. The engine's own date stripping also removes the blank
 * after a leading date, which made whole filters (exim, exim-spam, nginx-botsearch, horde…) match
 * nothing in `rampart check`. The time comes from a leading RFC 3164/5424/ISO date when there is
 * one, else from the cut date when it carries a year and is not an ambiguous `01-02-2024`;
 * otherwise the engine falls back to its clock rules.
 */
export function fail2banLineAdapter(datePatterns: string[] | null): (line: LogLine) => LogLine {
  const patterns = compileDatePatterns(datePatterns);
  const leading = new LogTimeParser();
  return (line) => {
    for (const re of patterns) {
      const m = re.exec(line.text);
      if (!m) continue;
      const span = m.indices?.[1] ?? m.indices?.[0] ?? [m.index, m.index + m[0].length];
      const text = line.text.slice(0, span[0]) + line.text.slice(span[1]);
      const stamp = leading.parse(line.text);
      const time = line.time ?? (Number.isNaN(stamp) ? readDate(line.text.slice(span[0], span[1])) : stamp);
      return time === undefined ? { ...line, text } : { ...line, text, time };
    }
    return line;
  };
}

function readDate(text: string): number | undefined {
  const t = text.trim().replace(/^\[|\]$/g, '');
  if (/^\d{10}(?:\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (!/\d{4}/.test(t) || /^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}/.test(t)) return undefined;
  // Apache's `01/Jan/2026:12:00:00 +0000`: a space between date and time lets Date.parse read it.
  const ms = Date.parse(t.replace(/(\d{4}):(\d{2}:)/, '$1 $2'));
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Recognises and strips the timestamp at the start of a log line:
 *  - RFC 3164 / traditional syslog `Nov 21 13:15:30` (local time, no year: the year is inferred
 *    from the clock, so a December line read in January belongs to last year),
 *  - RFC 5424 / ISO 8601 `2026-11-21T13:15:30.123456+00:00` (`Z`, offsets, or local without one),
 *  - fail2ban's `2026-11-21 13:15:30,123` and nginx's error log `2026/11/21 13:15:30`,
 * each optionally preceded by a syslog `<PRI>` (and RFC 5424's version `1`); and reads (without
 * stripping) the `[21/Nov/2026:13:15:30 +0000]` stamp inside access-log lines.
 * Parsing is by character codes with a one-entry cache per format, because consecutive lines
 * nearly always share their second; no per-line allocation besides the caller's slice.
 */
export class LogTimeParser {
  /**
   * Index in the last parsed text where the message after the timestamp starts: `from` (0 for a
   * whole line) when nothing was stripped.
   */
  restStart = 0;
  /**
   * The last RFC 3164 stamp's 15 character codes (all 0 before the first). Compared with the
   * line's code by code: its text kept as a string was a slice of an older read, and comparing
   * two slices (by `startsWith` or by character) costs an unwrapping per character.
   */
  private readonly last3164 = new Uint16Array(15);
  private last3164Ms = Number.NaN;
  private lastIsoKey = '';
  private lastIsoUtc = 0;
  private lastIsoLocal = 0;
  private lastClfKey = '';
  private lastClfMs = Number.NaN;

  /** @param now the clock used to infer RFC 3164's missing year (epoch ms). */
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Epoch ms of the timestamp of the line `text[from, end)` (the whole text unless given), or NaN
   * when there is none; restStart = `from` unless stripped. A reader that holds many lines in one
   * string passes the line's bounds instead of a slice of it (docs/adr/0055).
   */
  parse(text: string, from = 0, end = text.length): number {
    let i = from;
    if (text.charCodeAt(from) === 60 /* < */) {
      // Searched within the line only: the text may hold many (`indexOf` would run past it).
      const close = indexIn(text, '>', from, Math.min(end, from + 5));
      if (close > from + 1 && isDigits(text, from + 1, close)) {
        i = close + 1;
        if (i + 2 <= end && text.charCodeAt(i) === 49 /* 1 */ && text.charCodeAt(i + 1) === 32) i += 2;
      }
    }
    const c = i < end ? text.charCodeAt(i) : 0;
    let ms = Number.NaN;
    if (c >= 65 && c <= 90) ms = this.rfc3164(text, i, end);
    else if (c >= 48 && c <= 57) ms = this.iso(text, i, end);
    if (Number.isNaN(ms)) {
      this.restStart = from;
      ms = this.clf(text, from, end);
    }
    return ms;
  }

  /**
   * Access logs (nginx, Apache common/combined format) start with the client address and carry
   * the time inside: `192.0.2.1 - - [21/Nov/2026:13:15:30 +0000] "GET ...`. The stamp is left
   * in place (rules match the whole line) and only read for the time.
   */
  private clf(text: string, from: number, end: number): number {
    const b = indexIn(text, ' [', from, Math.min(end, from + 82));
    if (b < 0 || end < b + 29 || text.charCodeAt(b + 28) !== 93 /* ] */) return Number.NaN;
    const i = b + 2;
    const key = text.slice(i, i + 26);
    if (key === this.lastClfKey) return this.lastClfMs;
    const day = two(text, i);
    const month = MONTHS.indexOf(text.slice(i + 3, i + 6));
    const y = four(text, i + 7);
    const h = two(text, i + 12);
    const mi = two(text, i + 15);
    const sec = two(text, i + 18);
    const sign = text.charCodeAt(i + 21);
    const oh = two(text, i + 22);
    const om = two(text, i + 24);
    if (
      text.charCodeAt(i + 2) !== 47 ||
      text.charCodeAt(i + 6) !== 47 ||
      text.charCodeAt(i + 11) !== 58 ||
      month < 0 ||
      month % 3 !== 0 ||
      !(day >= 1 && day <= 31 && y >= 1970 && h <= 23 && mi <= 59 && sec <= 60 && oh <= 23 && om <= 59) ||
      (sign !== 43 && sign !== 45)
    ) {
      return Number.NaN;
    }
    const offset = (sign === 45 ? -1 : 1) * (oh * 60 + om);
    this.lastClfKey = key;
    this.lastClfMs = Date.UTC(y, month / 3, day, h, mi, sec) - offset * 60_000;
    return this.lastClfMs;
  }

  private rfc3164(text: string, i: number, end: number): number {
    // "Mmm dd hh:mm:ss " — 15 characters then a space.
    if (end < i + 16 || text.charCodeAt(i + 15) !== 32) return Number.NaN;
    if (this.same3164(text, i)) {
      this.restStart = i + 16;
      return this.last3164Ms;
    }
    const month = MONTHS.indexOf(text.slice(i, i + 3));
    if (month < 0 || month % 3 !== 0 || text.charCodeAt(i + 3) !== 32) return Number.NaN;
    const d1 = text.charCodeAt(i + 4);
    const day = (d1 === 32 ? 0 : d1 - 48) * 10 + (text.charCodeAt(i + 5) - 48);
    const h = two(text, i + 7);
    const mi = two(text, i + 10);
    const s = two(text, i + 13);
    if (text.charCodeAt(i + 9) !== 58 || text.charCodeAt(i + 12) !== 58) return Number.NaN;
    if (!(day >= 1 && day <= 31 && h <= 23 && mi <= 59 && s <= 60)) return Number.NaN;
    const now = this.now();
    const year = new Date(now).getFullYear();
    let ms = new Date(year, month / 3, day, h, mi, s).getTime();
    // A stamp more than a day in the future was written last year (read across New Year).
    if (ms > now + 86_400_000) ms = new Date(year - 1, month / 3, day, h, mi, s).getTime();
    for (let k = 0; k < 15; k++) this.last3164[k] = text.charCodeAt(i + k);
    this.last3164Ms = ms;
    this.restStart = i + 16;
    return ms;
  }

  /** Whether text[i, i + 15) is the last RFC 3164 stamp; from the end, where stamps differ first. */
  private same3164(text: string, i: number): boolean {
    const last = this.last3164;
    if (last[0] === 0) return false;
    for (let k = 14; k >= 0; k--) if (text.charCodeAt(i + k) !== last[k]) return false;
    return true;
  }

  private iso(text: string, i: number, end: number): number {
    // YYYY-MM-DD[T ]hh:mm:ss, or nginx's error-log YYYY/MM/DD hh:mm:ss
    if (end < i + 19) return Number.NaN;
    const sep = text.charCodeAt(i + 10);
    const dash = text.charCodeAt(i + 4);
    if (
      (dash !== 45 && dash !== 47) ||
      text.charCodeAt(i + 7) !== dash ||
      (sep !== 84 && sep !== 32) ||
      text.charCodeAt(i + 13) !== 58 ||
      text.charCodeAt(i + 16) !== 58
    ) {
      return Number.NaN;
    }
    let j = i + 19;
    let frac = 0;
    // Past `end` is the next line when the text holds many: read nothing there.
    const f = j < end ? text.charCodeAt(j) : 0;
    if (f === 46 || f === 44) {
      // Fraction: keep milliseconds, skip finer digits.
      j++;
      let scale = 100;
      while (j < end) {
        const d = text.charCodeAt(j) - 48;
        if (d < 0 || d > 9) break;
        frac += d * scale;
        scale /= 10;
        j++;
      }
      frac = Math.floor(frac);
    }
    let offsetMin: number | null = null;
    const z = j < end ? text.charCodeAt(j) : 0;
    if (z === 90 /* Z */) {
      offsetMin = 0;
      j++;
    } else if (z === 43 || z === 45) {
      // +hh:mm (RFC 3339) or +hhmm (journalctl -o short-iso, ISO 8601 basic).
      const colon = j + 3 < end && text.charCodeAt(j + 3) === 58 ? 1 : 0;
      if (j + 5 + colon > end) return Number.NaN;
      const oh = two(text, j + 1);
      const om = two(text, j + 3 + colon);
      if (!(oh <= 23 && om <= 59)) return Number.NaN;
      offsetMin = (z === 45 ? -1 : 1) * (oh * 60 + om);
      j += 5 + colon;
    }
    if (j < end && text.charCodeAt(j) !== 32) return Number.NaN;
    const key = text.slice(i, i + 19);
    if (key !== this.lastIsoKey) {
      const y = four(text, i);
      const mo = two(text, i + 5);
      const d = two(text, i + 8);
      const h = two(text, i + 11);
      const mi = two(text, i + 14);
      const s = two(text, i + 17);
      if (!(y >= 1970 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60)) {
        return Number.NaN;
      }
      this.lastIsoKey = key;
      this.lastIsoUtc = Date.UTC(y, mo - 1, d, h, mi, s);
      this.lastIsoLocal = new Date(y, mo - 1, d, h, mi, s).getTime();
    }
    this.restStart = j < end ? j + 1 : j;
    return (offsetMin === null ? this.lastIsoLocal : this.lastIsoUtc - offsetMin * 60_000) + frac;
  }
}

// Indexes are multiples of 3 so `indexOf` of a 3-letter name gives month × 3.
const MONTHS = 'JanFebMarAprMayJunJulAugSepOctNovDec';

function two(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  if (a < 0 || a > 9 || b < 0 || b > 9) return 99;
  return a * 10 + b;
}

function four(s: string, i: number): number {
  const hi = two(s, i);
  const lo = two(s, i + 2);
  return hi === 99 || lo === 99 ? 0 : hi * 100 + lo;
}

/**
 * Where `part` (one or two characters) first is in `text[from, to)`, or -1; reads nothing at or
 * past `to` (the ranges searched are a few dozen characters, so a loop, not `indexOf`).
 */
function indexIn(text: string, part: string, from: number, to: number): number {
  const a = part.charCodeAt(0);
  const b = part.length > 1 ? part.charCodeAt(1) : -1;
  for (let k = from; k + part.length <= to; k++) {
    if (text.charCodeAt(k) === a && (b < 0 || text.charCodeAt(k + 1) === b)) return k;
  }
  return -1;
}

function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

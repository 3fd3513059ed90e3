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
  /** Index in the last parsed text where the message after the timestamp starts. */
  restStart = 0;
  private last3164 = '';
  private last3164Ms = Number.NaN;
  private lastIsoKey = '';
  private lastIsoUtc = 0;
  private lastIsoLocal = 0;
  private lastClfKey = '';
  private lastClfMs = Number.NaN;

  /** @param now the clock used to infer RFC 3164's missing year (epoch ms). */
  constructor(private readonly now: () => number = Date.now) {}

  /** Epoch ms of the line's timestamp, or NaN when there is none; restStart = 0 unless stripped. */
  parse(text: string): number {
    let i = 0;
    if (text.charCodeAt(0) === 60 /* < */) {
      const close = text.indexOf('>');
      if (close > 1 && close <= 4 && isDigits(text, 1, close)) {
        i = close + 1;
        if (text.charCodeAt(i) === 49 /* 1 */ && text.charCodeAt(i + 1) === 32) i += 2;
      }
    }
    const c = text.charCodeAt(i);
    let ms = Number.NaN;
    if (c >= 65 && c <= 90) ms = this.rfc3164(text, i);
    else if (c >= 48 && c <= 57) ms = this.iso(text, i);
    if (Number.isNaN(ms)) {
      this.restStart = 0;
      ms = this.clf(text);
    }
    return ms;
  }

  /**
   * Access logs (nginx, Apache common/combined format) start with the client address and carry
   * the time inside: `192.0.2.1 - - [21/Nov/2026:13:15:30 +0000] "GET ...`. The stamp is left
   * in place (rules match the whole line) and only read for the time.
   */
  private clf(text: string): number {
    const b = text.indexOf(' [');
    if (b < 0 || b > 80 || text.length < b + 29 || text.charCodeAt(b + 28) !== 93 /* ] */) return Number.NaN;
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

  private rfc3164(text: string, i: number): number {
    // "Mmm dd hh:mm:ss " — 15 characters then a space.
    if (text.length < i + 16 || text.charCodeAt(i + 15) !== 32) return Number.NaN;
    if (text.startsWith(this.last3164, i) && this.last3164 !== '') {
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
    this.last3164 = text.slice(i, i + 15);
    this.last3164Ms = ms;
    this.restStart = i + 16;
    return ms;
  }

  private iso(text: string, i: number): number {
    // YYYY-MM-DD[T ]hh:mm:ss, or nginx's error-log YYYY/MM/DD hh:mm:ss
    if (text.length < i + 19) return Number.NaN;
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
    const f = text.charCodeAt(j);
    if (f === 46 || f === 44) {
      // Fraction: keep milliseconds, skip finer digits.
      j++;
      let scale = 100;
      while (j < text.length) {
        const d = text.charCodeAt(j) - 48;
        if (d < 0 || d > 9) break;
        frac += d * scale;
        scale /= 10;
        j++;
      }
      frac = Math.floor(frac);
    }
    let offsetMin: number | null = null;
    const z = text.charCodeAt(j);
    if (z === 90 /* Z */) {
      offsetMin = 0;
      j++;
    } else if (z === 43 || z === 45) {
      // +hh:mm (RFC 3339) or +hhmm (journalctl -o short-iso, ISO 8601 basic).
      const colon = text.charCodeAt(j + 3) === 58 ? 1 : 0;
      const oh = two(text, j + 1);
      const om = two(text, j + 3 + colon);
      if (!(oh <= 23 && om <= 59)) return Number.NaN;
      offsetMin = (z === 45 ? -1 : 1) * (oh * 60 + om);
      j += 5 + colon;
    }
    if (j < text.length && text.charCodeAt(j) !== 32) return Number.NaN;
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
    this.restStart = j < text.length ? j + 1 : j;
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

function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

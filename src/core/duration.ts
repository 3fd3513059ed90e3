import { RampartError } from './errors.js';

/** Seconds, or null for a ban that never expires. */
export type DurationSeconds = number | null;

const UNIT_SECONDS: Record<string, number> = {
  s: 1,
  sec: 1,
  m: 60,
  min: 60,
  h: 3600,
  d: 86400,
  w: 604800,
};

/**
 * The longest finite ban, about 317 years: past it `now + duration × 1000` stops being an exact
 * integer of milliseconds, so the expiry written to the log would not be the one meant.
 */
export const MAX_DURATION_SECONDS = 10_000_000_000;

const PART = /(\d+(?:\.\d+)?)\s*(sec|min|s|m|h|d|w)/gy;

/**
 * Parses `90s`, `10m`, `12h`, `1d`, `1w`, compounds such as `1h30m`, a bare number of seconds
 * (fail2ban's style), and `permanent` (also fail2ban's `-1`). Returns whole seconds or null.
 */
export function parseDuration(text: string | number, what = 'duration'): DurationSeconds {
  if (typeof text === 'number') {
    if (text === -1) return null;
    if (Number.isFinite(text) && text > 0 && text <= MAX_DURATION_SECONDS) return Math.round(text);
    throw new RampartError(
      'E_DURATION',
      `${what}: ${text} is not a positive number of seconds (at most ${MAX_DURATION_SECONDS})`,
    );
  }
  const s = text.trim().toLowerCase();
  if (s === 'permanent' || s === 'forever' || s === 'never' || s === '-1') return null;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n > 0 && n <= MAX_DURATION_SECONDS) return n;
  } else {
    PART.lastIndex = 0;
    let total = 0;
    let consumed = 0;
    for (let m = PART.exec(s); m; m = PART.exec(s)) {
      total += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
      consumed = PART.lastIndex;
    }
    if (consumed === s.length && total > 0 && total <= MAX_DURATION_SECONDS) return Math.round(total);
  }
  throw new RampartError(
    'E_DURATION',
    `${what}: "${text}" is not a duration (use 90s, 10m, 12h, 1d, 1w, 1h30m or permanent; at most ${MAX_DURATION_SECONDS} s)`,
  );
}

/** The shortest readable form: 3600 → "1h", 5400 → "1h30m", null → "permanent". */
export function formatDuration(seconds: DurationSeconds): string {
  if (seconds === null) return 'permanent';
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [unit, size] of [
    ['w', 604800],
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

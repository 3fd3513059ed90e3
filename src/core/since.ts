import { parseDuration } from './duration.js';
import { RampartError } from './errors.js';

/**
 * A point in time as an operator writes it: epoch milliseconds (`1764750000000`), an ISO 8601
 * date (`2026-12-03T10:00Z`), or a duration meaning "that long ago" (`1h`, `2d`).
 */
export function parseSince(text: string, now = Date.now(), what = 'since'): number {
  const s = text.trim();
  if (/^\d{1,16}$/.test(s)) return Number(s);
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    if (Number.isFinite(t)) return t;
  } else if (s.length <= 32) {
    try {
      const d = parseDuration(s, what);
      if (d !== null) return now - d * 1000;
    } catch {
      // fall through to the one message below
    }
  }
  throw new RampartError(
    'E_USAGE',
    `${what}: "${s.slice(0, 40)}" is not a time (epoch ms, an ISO date like 2026-12-03T10:00Z, or a duration ago like 1h)`,
  );
}

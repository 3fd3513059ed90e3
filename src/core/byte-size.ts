const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
};

/**
 * A size in bytes from a number or text such as `64MiB`, `1.5 GB`, `500kB` (binary and decimal
 * units, case-insensitive); null when it is not one, negative, or not finite.
 */
export function parseByteSize(v: number | string): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m === null ? undefined : UNITS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) return null;
  const n = Number(m[1]) * unit;
  return Number.isFinite(n) ? Math.floor(n) : null;
}

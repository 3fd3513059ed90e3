import type { Target } from '../core/address.js';

export interface Tracked {
  target: Target;
  /** ms since epoch; null = permanent. */
  expiresAt: number | null;
}

/**
 * The elements an interval set must hold: those not inside another tracked range. CIDR blocks
 * either nest or are disjoint, and nft refuses an element that overlaps one already in the set
 * ("interval overlaps with an existing one"), so nested bans stay in memory only and take over
 * when the range around them is lifted.
 */
export function topLevel(tracked: Iterable<Tracked>): Map<string, Tracked> {
  const sorted = [...tracked].sort((a, b) =>
    a.target.first < b.target.first
      ? -1
      : a.target.first > b.target.first
        ? 1
        : a.target.prefix - b.target.prefix,
  );
  const tops = new Map<string, Tracked>();
  let cover: Tracked | undefined;
  for (const t of sorted) {
    // Sorted by start then by size (largest first): a block is nested iff the last top covers it.
    if (cover && t.target.last <= cover.target.last) continue;
    tops.set(t.target.text, t);
    cover = t;
  }
  return tops;
}

export function overlaps(a: Target, b: Target): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

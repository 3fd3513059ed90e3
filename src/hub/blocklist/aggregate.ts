import { makeTarget, type Target } from '../../core/address.js';

/** A ban to merge: its range and when it ends (null = permanent). */
export interface Span {
  target: Target;
  expiresAt: number | null;
}

/** One CIDR of the merged list, ending when the earliest ban merged into it ends. */
export interface MergedCidr {
  target: Target;
  expiresAt: number | null;
}

/**
 * The fewest CIDRs covering exactly the addresses the bans cover: overlapping and adjacent ranges
 * are joined into intervals, and each interval is cut into the largest aligned blocks it holds.
 * Nothing outside a ban is ever covered (an edge router must not drop a neighbour), so two
 * adjacent /25s become a /24 but a /25 and a lone address beside it stay apart.
 * IPv4 comes first, each family in address order.
 */
export function aggregate(spans: Iterable<Span>): MergedCidr[] {
  const byFamily: Record<4 | 6, Span[]> = { 4: [], 6: [] };
  for (const s of spans) byFamily[s.target.family].push(s);
  const out: MergedCidr[] = [];
  for (const family of [4, 6] as const) {
    const list = byFamily[family];
    list.sort((a, b) => (a.target.first < b.target.first ? -1 : a.target.first > b.target.first ? 1 : 0));
    let i = 0;
    while (i < list.length) {
      let { first, last } = list[i]!.target;
      let expiresAt = list[i]!.expiresAt;
      for (i++; i < list.length && list[i]!.target.first <= last + 1n; i++) {
        const next = list[i]!;
        if (next.target.last > last) last = next.target.last;
        expiresAt = earlier(expiresAt, next.expiresAt);
      }
      for (const target of rangeToCidrs(family, first, last)) out.push({ target, expiresAt });
    }
  }
  return out;
}

/** The largest aligned blocks that tile [first, last] exactly, in address order. */
export function rangeToCidrs(family: 4 | 6, first: bigint, last: bigint): Target[] {
  const bits = family === 4 ? 32 : 128;
  const out: Target[] = [];
  let start = first;
  while (start <= last) {
    // The block may be as large as start's alignment allows, and must end inside the range.
    let size = start === 0n ? 1n << BigInt(bits) : start & -start;
    while (start + size - 1n > last) size >>= 1n;
    const prefix = bits - log2(size);
    out.push(makeTarget(family, start, prefix));
    start += size;
  }
  return out;
}

function log2(power: bigint): number {
  let n = 0;
  for (let v = power; v > 1n; v >>= 1n) n++;
  return n;
}

/** The earlier of two expiries, null being never. */
function earlier(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

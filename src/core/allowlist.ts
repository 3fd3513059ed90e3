import { parseTarget, type Target } from './address.js';

interface Interval {
  first: bigint;
  last: bigint;
  /** The entry's canonical text, reported when it blocks a ban. */
  label: string;
}

/**
 * A set of CIDR ranges that must never be banned. Entries are kept as sorted, merged intervals per
 * family, so a lookup is a binary search (O(log n)); Node's net.BlockList scans every rule, which
 * is too slow with tens of thousands of entries checked on every decision.
 */
export class Allowlist {
  private readonly entries = new Map<string, Target>();
  private v4: Interval[] = [];
  private v6: Interval[] = [];
  /** Intervals are rebuilt lazily on the next lookup, so loading n entries one by one stays O(n log n). */
  private dirty = false;

  constructor(cidrs: Iterable<string | Target> = []) {
    for (const c of cidrs) this.addQuietly(c);
    this.dirty = true;
  }

  get size(): number {
    return this.entries.size;
  }

  list(): Target[] {
    return [...this.entries.values()].sort((a, b) =>
      a.family !== b.family ? a.family - b.family : a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
    );
  }

  add(cidr: string | Target): Target {
    const t = this.addQuietly(cidr);
    this.dirty = true;
    return t;
  }

  remove(cidr: string | Target): boolean {
    const t = typeof cidr === 'string' ? parseTarget(cidr) : cidr;
    const had = this.entries.delete(t.text);
    if (had) this.dirty = true;
    return had;
  }

  /** The entry (canonical text) that overlaps the target, or undefined when none does. */
  match(t: Target): string | undefined {
    if (this.dirty) this.rebuild();
    const list = t.family === 4 ? this.v4 : this.v6;
    let lo = 0;
    let hi = list.length - 1;
    let found = -1;
    // The last interval starting at or before the target's end is the only one that can overlap.
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.first <= t.last) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return undefined;
    const iv = list[found]!;
    return iv.last >= t.first ? iv.label : undefined;
  }

  has(t: Target): boolean {
    return this.match(t) !== undefined;
  }

  private addQuietly(cidr: string | Target): Target {
    const t = typeof cidr === 'string' ? parseTarget(cidr) : cidr;
    this.entries.set(t.text, t);
    return t;
  }

  private rebuild(): void {
    this.dirty = false;
    const build = (family: 4 | 6): Interval[] => {
      const sorted = [...this.entries.values()]
        .filter((t) => t.family === family)
        .sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
      const merged: Interval[] = [];
      for (const t of sorted) {
        const prev = merged[merged.length - 1];
        if (prev && t.first <= prev.last + 1n) {
          if (t.last > prev.last) prev.last = t.last;
        } else {
          merged.push({ first: t.first, last: t.last, label: t.text });
        }
      }
      return merged;
    };
    this.v4 = build(4);
    this.v6 = build(6);
  }
}

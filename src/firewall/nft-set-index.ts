import { formatIPv4, formatIPv6Words, parseIPv4, parseIPv6Words, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { NFT_MAX_TIMEOUT } from './nft-text.js';
import type { SetDump } from './run-tool.js';

/**
 * A plain kernel set as read over netlink (a {@link SetDump}), indexed for lookups by address:
 * an open-addressing table of element numbers over the dump's key words, plus one "seen" flag per
 * element. A million IPv6 elements cost about 30 MB (keys 16 B, time left 8 B, table 8 B, flag 1 B)
 * and no object per element, which is what lets a reconcile compare a million bans (ADR 0043).
 */
export class SetIndex {
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly seen: Uint8Array;
  private readonly words = new Int32Array(4);

  constructor(
    private readonly dump: SetDump,
    /** When the read began (ms). */
    readonly at: number,
    /**
     * How long the read took (ms): each element's time left was taken somewhere in between (a
     * whole read of a million takes a minute or more), so comparisons allow that much more.
     */
    readonly took = 0,
  ) {
    let size = 16;
    while (size < dump.count * 2) size *= 2;
    this.table = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    this.seen = new Uint8Array(dump.count);
    const k = dump.keys;
    for (let i = 0; i < dump.count; i++) {
      let slot = hash(k[i * 4]!, k[i * 4 + 1]!, k[i * 4 + 2]!, k[i * 4 + 3]!) & this.mask;
      let twice = false;
      for (let j = this.table[slot]!; j !== -1; j = this.table[slot]!) {
        if (
          k[j * 4] === k[i * 4] &&
          k[j * 4 + 1] === k[i * 4 + 1] &&
          k[j * 4 + 2] === k[i * 4 + 2] &&
          k[j * 4 + 3] === k[i * 4 + 3]
        ) {
          twice = true;
          break;
        }
        slot = (slot + 1) & this.mask;
      }
      // A read beside our own commits may meet an element twice (the kernel's hash table grew
      // under the walk): the copy would stay unmarked and be taken for a stray.
      if (twice) this.seen[i] = 1;
      else this.table[slot] = i;
    }
  }

  get count(): number {
    return this.dump.count;
  }

  /** The element number holding this single address, or -1. */
  find(t: Target): number {
    const w = this.words;
    if (!toWords(t, w)) return -1;
    const k = this.dump.keys;
    for (let slot = hash(w[0]!, w[1]!, w[2]!, w[3]!) & this.mask; ; slot = (slot + 1) & this.mask) {
      const i = this.table[slot]!;
      if (i === -1) return -1;
      if (k[i * 4] === w[0] && k[i * 4 + 1] === w[1] && k[i * 4 + 2] === w[2] && k[i * 4 + 3] === w[3])
        return i;
    }
  }

  /** Marks element `i` as desired; whatever stays unmarked is a stray. */
  mark(i: number): void {
    this.seen[i] = 1;
  }

  /** Whether element `i`'s time left at `now` is close enough to `wanted` (see timeLeftMatches). */
  timeLeftMatches(i: number, now: number, wanted: DurationSeconds): boolean {
    const ms = this.dump.left[i]!;
    // Taken at the read's middle, give or take half its length.
    const left = ms < 0 ? null : (ms - (now - this.at - this.took / 2)) / 1000;
    return timeLeftMatches(left, wanted, this.took / 2000);
  }

  /** Texts of the elements never marked, in the kernel's order. */
  *unmarked(family: 4 | 6): Generator<string> {
    const k = this.dump.keys;
    const w = this.words;
    for (let i = 0; i < this.dump.count; i++) {
      if (this.seen[i]) continue;
      if (family === 4) yield formatIPv4(k[i * 4]! >>> 0);
      else {
        w.set(k.subarray(i * 4, i * 4 + 4));
        yield formatIPv6Words(w);
      }
    }
  }
}

function hash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ b ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ c ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ d ^ (h >>> 16), 0xc2b2ae35);
  return h ^ (h >>> 15);
}

/** A single address as the dump's four words (IPv4 in the first); false for anything else. */
function toWords(t: Target, w: Int32Array): boolean {
  if (t.family === 4) {
    const v = parseIPv4(t.text);
    if (v === null) return false;
    w[0] = v | 0;
    w[1] = 0;
    w[2] = 0;
    w[3] = 0;
    return true;
  }
  if (parseIPv6Words(t.text, w)) return true;
  // A form the fast parser leaves to bigints (an IPv4-mapped tail): from the parsed value.
  for (let j = 0; j < 4; j++) w[j] = Number((t.first >> BigInt(96 - 32 * j)) & 0xffffffffn) | 0;
  return true;
}

/**
 * Whether an element's time left in the kernel is close enough to the ban's: within 1% of the
 * ban's time left or 10 s, whichever is more (commit delays and rounding to seconds); a ban longer
 * than nft takes is compared with the clamped value, so it is renewed about every 1% of 3 years.
 */
export function timeLeftMatches(kernel: number | null, wanted: DurationSeconds, slack = 0): boolean {
  if (kernel === null || wanted === null) return kernel === wanted;
  const want = Math.min(wanted, NFT_MAX_TIMEOUT);
  return Math.abs(kernel - want) <= Math.max(10, want / 100) + slack;
}

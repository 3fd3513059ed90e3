/**
 * The engine's per-(rule, address) index: a map capped at `max` entries that evicts the least
 * recently seen in two generations, the scheme of the quick-lru package (new and touched entries
 * are young; when the young hold half the cap they become old and the previous old are dropped,
 * so eviction is least-recently-seen done in bulk). IPv4 and IPv6 keys live in open-addressing
 * tables of typed arrays keyed by the address as 32-bit words: a lookup is one hash and usually
 * one cache line, with no per-key string or heap number. Both generations share one table per
 * address family, each entry marked with its generation's bit, so a lookup (a miss included) is
 * one probe where two tables cost two cache misses, and a touched old entry flips its bit in
 * place instead of moving (docs/adr/0038). Other keys (text) use two Maps in the same
 * generations, so the cap and eviction order cover all three. The engine stores small integers
 * (indexes into its typed-array tracker state, see tracker-state.ts) and frees them in `onEvict`.
 */
export class TrackerTable {
  /** [IPv4 (address, rule), IPv6 (4 words, rule)]. */
  private readonly words: [WordTable, WordTable];
  private youngTexts = new Map<string, number>();
  private oldTexts = new Map<string, number>();
  /** The generation bit of young entries; old ones have the other. */
  private young = 0;
  private youngCount = 0;
  private oldCount = 0;
  private readonly generation: number;
  /** Entries dropped because the cap was reached. */
  evictions = 0;

  /**
   * @param max the cap (at least 2); an odd cap holds one fewer.
   * @param onEvict called with the value and rule index of each entry the cap drops (-1 as the
   *   rule for text keys).
   */
  constructor(
    readonly max: number,
    private readonly onEvict?: (value: number, rule: number) => void,
  ) {
    this.generation = Math.max(1, Math.floor(max / 2));
    const both = this.generation * 2;
    this.words = [new WordTable(both, 2, V4_STRIDE), new WordTable(both, 5, V6_STRIDE)];
  }

  get size(): number {
    return this.youngCount + this.oldCount;
  }

  /**
   * The value for (IPv4 address as an unsigned 32-bit number, rule index), marking it seen. Kept
   * small, its probe apart from the generic one and an old entry's move out of line, so that V8
   * inlines it whole into the engine's failure path (docs/adr/0046).
   */
  getV4(v4: number, rule: number): number | undefined {
    const table = this.words[0];
    const o = table.find2(v4 | 0, rule);
    if (o < 0) return undefined;
    const value = table.valueAt(o);
    return table.generationAt(o) === this.young ? value : this.seenOld(v4Key(v4, rule), 0, o, value);
  }

  /** Adds a value for a key that `getV4` just reported missing. */
  addV4(v4: number, rule: number, value: number): void {
    this.addWords(v4Key(v4, rule), 0, value);
  }

  /** Replaces the value of a key that `getV4` just found. */
  setV4(v4: number, rule: number, value: number): void {
    this.words[0].setAt(this.words[0].findAgain(v4Key(v4, rule)), value);
  }

  deleteV4(v4: number, rule: number): boolean {
    return this.deleteWords(v4Key(v4, rule), 0);
  }

  /** The value for (IPv6 address as four 32-bit words, most significant first; rule index). */
  getV6(words: Int32Array, rule: number): number | undefined {
    return this.getWords(v6Key(words, rule), 1);
  }

  /** Adds a value for a key that `getV6` just reported missing. */
  addV6(words: Int32Array, rule: number, value: number): void {
    this.addWords(v6Key(words, rule), 1, value);
  }

  /** Replaces the value of a key that `getV6` just found. */
  setV6(words: Int32Array, rule: number, value: number): void {
    this.words[1].setAt(this.words[1].findAgain(v6Key(words, rule)), value);
  }

  deleteV6(words: Int32Array, rule: number): boolean {
    return this.deleteWords(v6Key(words, rule), 1);
  }

  /** The value for a text key, marking it seen. */
  getText(key: string): number | undefined {
    const v = this.youngTexts.get(key);
    if (v !== undefined) return v;
    const o = this.oldTexts.get(key);
    if (o !== undefined) {
      this.oldTexts.delete(key);
      this.oldCount--;
      this.makeRoom();
      this.youngTexts.set(key, o);
      this.youngCount++;
    }
    return o;
  }

  /** Adds a value for a key that `getText` just reported missing. */
  addText(key: string, value: number): void {
    this.makeRoom();
    this.youngTexts.set(key, value);
    this.youngCount++;
  }

  deleteText(key: string): boolean {
    if (this.youngTexts.delete(key)) this.youngCount--;
    else if (this.oldTexts.delete(key)) this.oldCount--;
    else return false;
    return true;
  }

  private getWords(key: Int32Array, kind: 0 | 1): number | undefined {
    const table = this.words[kind];
    const o = table.find(key);
    if (o < 0) return undefined;
    const value = table.valueAt(o);
    if (table.generationAt(o) === this.young) return value;
    return this.seenOld(key, kind, o, value);
  }

  /** An old entry (at offset `o`) seen again is young: its bit flips where it is. */
  private seenOld(key: Int32Array, kind: 0 | 1, o: number, value: number): number {
    const table = this.words[kind];
    this.oldCount--;
    table.markAt(o, this.young);
    if (this.youngCount >= this.generation) {
      // The young are full: the old go (this entry, already marked, stays), the young become
      // old, and this entry is young again in the new generation (the sweep may have moved it).
      this.makeRoom();
      table.markAt(table.find(key), this.young);
    }
    this.youngCount++;
    return value;
  }

  private deleteWords(key: Int32Array, kind: 0 | 1): boolean {
    const table = this.words[kind];
    const o = table.find(key);
    if (o < 0) return false;
    if (table.generationAt(o) === this.young) this.youngCount--;
    else this.oldCount--;
    table.deleteAt(o);
    return true;
  }

  private addWords(key: Int32Array, kind: 0 | 1, value: number): void {
    this.makeRoom();
    this.words[kind].insert(key, value, this.young);
    this.youngCount++;
  }

  private makeRoom(): void {
    if (this.youngCount < this.generation) return;
    const old = this.young ^ 1;
    this.evictions += this.oldCount;
    const onEvict = this.onEvict;
    this.words[0].sweep(old, onEvict);
    this.words[1].sweep(old, onEvict);
    if (onEvict !== undefined) for (const v of this.oldTexts.values()) onEvict(v, -1);
    const texts = this.oldTexts;
    texts.clear();
    this.oldTexts = this.youngTexts;
    this.youngTexts = texts;
    this.young = old;
    this.oldCount = this.youngCount;
    this.youngCount = 0;
  }
}

/**
 * Bytes of the key tables at most, for `max` entries: the IPv4 and IPv6 tables grown to hold
 * both generations full (tables never shrink; values live in the slots).
 */
export function trackerTableBytes(max: number): number {
  const generation = Math.max(1, Math.floor(max / 2));
  return slotsFor(generation * 2) * (V4_STRIDE + V6_STRIDE) * 4;
}

// Scratch keys: the table copies what it keeps, so one buffer per shape serves every call.
const V4_KEY = new Int32Array(2);
const V6_KEY = new Int32Array(5);

function v4Key(v4: number, rule: number): Int32Array {
  V4_KEY[0] = v4;
  V4_KEY[1] = rule;
  return V4_KEY;
}

function v6Key(words: Int32Array, rule: number): Int32Array {
  V6_KEY[0] = words[0]!;
  V6_KEY[1] = words[1]!;
  V6_KEY[2] = words[2]!;
  V6_KEY[3] = words[3]!;
  V6_KEY[4] = rule;
  return V6_KEY;
}

// Key words then the value, with no padding: 12 and 24 bytes a slot. A slot may straddle two
// cache lines, but probes walk neighbouring slots anyway, and the tables are a third smaller.
const V4_STRIDE = 3;
const V6_STRIDE = 6;

const MIN_SLOTS = 1024;
/**
 * A table growing to this many bytes or more (2^16 IPv4 slots, 2^15 IPv6 ones) takes, once, an
 * array for its largest size: the kernel commits it page by page as the table grows into it, so
 * a doubling neither copies to a fresh array nor first-touches pages the next doubling drops.
 * Smaller tables double by copy: a small log stays small (docs/adr/0038). In bytes, not slots,
 * so the IPv6 table (twice the bytes a slot) stops copying at the same size (docs/adr/0042).
 */
const RESERVE_FROM_BYTES = 768 * 1024;
/** The last word of a slot: its generation bit, the mark of a slot placed by `grow`, value + 1. */
const GENERATION_BIT = 1 << 31;
const MOVED = 1 << 30;
const VALUE_MASK = MOVED - 1;

/**
 * Linear probing over keys of `width` 32-bit words, each slot's words side by side, then a word
 * holding the value + 1 (0 = empty) and the entry's generation bit, so a probe and its answer
 * touch one cache line and nothing else. Kept at most 3/4 full by doubling, up to the room `cap`
 * entries need; deletion shifts the following run back, so there are no tombstones to slow later
 * probes.
 */
class WordTable {
  size = 0;
  private mask: number;
  /** 32 minus log2(slots): a key's home slot is its hash's top bits (see `grow`). */
  private shift: number;
  /** The table is the first (mask + 1) * stride words; past them, room reserved to grow into. */
  private slots: Int32Array;
  /** One entry's words while `grow` moves it. */
  private readonly carry: Int32Array;
  /**
   * Where the last `find` ended, until an entry moves: the offset of the slot found (`hit`), or
   * the empty slot that ended a miss (`gap`, for the key in `missed`). A new pair is looked up
   * then added, a pair's second failure looked up then set: the second step reuses the probe
   * instead of hashing and walking the run again (docs/adr/0046).
   */
  private hit = -1;
  private gap = -1;
  private readonly missed: Int32Array;
  /** Per table, so which addresses collide cannot be worked out in advance. */
  private readonly seed = (Math.random() * 0x1_0000_0000) | 0;

  constructor(
    private readonly cap: number,
    private readonly width: number,
    private readonly stride: number,
  ) {
    const n = Math.min(MIN_SLOTS, slotsFor(cap));
    this.mask = n - 1;
    this.shift = 32 - Math.log2(n);
    this.slots = new Int32Array(n * stride);
    this.carry = new Int32Array(stride);
    this.missed = new Int32Array(width);
  }

  /** The offset of the key's slot, or -1. */
  find(key: Int32Array): number {
    const { width, stride, mask, shift } = this;
    const s = this.slots;
    if (width === 2) return this.find2(key[0]!, key[1]!);
    for (let i = this.hash(key, 0) >>> shift; ; i = (i + 1) & mask) {
      const o = i * stride;
      if (s[o + width] === 0) {
        this.missed.set(key);
        this.gap = o;
        return -1;
      }
      let w = 0;
      while (w < width && s[o + w] === key[w]) w++;
      if (w === width) {
        this.hit = o;
        return o;
      }
    }
  }

  /** `find` of the two-word key (a, b), as int32: IPv4 keys, nearly every lookup, the loop unrolled. */
  find2(a: number, b: number): number {
    const { stride, mask } = this;
    const s = this.slots;
    for (let i = this.hash2(a, b) >>> this.shift; ; i = (i + 1) & mask) {
      const o = i * stride;
      if (s[o + 2] === 0) {
        this.missed[0] = a;
        this.missed[1] = b;
        this.gap = o;
        return -1;
      }
      if (s[o] === a && s[o + 1] === b) {
        this.hit = o;
        return o;
      }
    }
  }

  /** `find` for the key the last `find` found, without probing again when nothing moved since. */
  findAgain(key: Int32Array): number {
    const o = this.hit;
    if (o >= 0 && this.holds(o, key)) return o;
    return this.find(key);
  }

  /** Whether the `width` words at offset `o` of `words` (the slots unless given) are the key's. */
  private holds(o: number, key: Int32Array, words: Int32Array = this.slots): boolean {
    for (let w = 0; w < this.width; w++) if (words[o + w] !== key[w]) return false;
    return true;
  }

  /** Entries moved (or left): the offsets `find` left are stale. */
  private moved(): void {
    this.hit = -1;
    this.gap = -1;
  }

  /** The value in the slot at offset `o` (from `find`). */
  valueAt(o: number): number {
    return (this.slots[o + this.width]! & VALUE_MASK) - 1;
  }

  /** The generation bit (0 or 1) of the slot at offset `o`. */
  generationAt(o: number): number {
    return this.slots[o + this.width]! >>> 31;
  }

  markAt(o: number, generation: number): void {
    const s = this.slots;
    const at = o + this.width;
    s[at] = (s[at]! & ~GENERATION_BIT) | (generation << 31);
  }

  /** Replaces the value in the slot at offset `o` (from `find`), keeping its generation. */
  setAt(o: number, value: number): void {
    if (value < 0 || value >= VALUE_MASK) throw new RangeError(`tracker table value ${value} out of range`);
    const at = o + this.width;
    this.slots[at] = (this.slots[at]! & GENERATION_BIT) | (value + 1);
  }

  /** Inserts a key known to be absent, with a value from 0 to 2^30 - 2. */
  insert(key: Int32Array, value: number, generation: number): void {
    if (value < 0 || value >= VALUE_MASK) throw new RangeError(`tracker table value ${value} out of range`);
    if ((this.size + 1) * 4 > (this.mask + 1) * 3 && this.mask + 1 < slotsFor(this.cap)) this.grow();
    const { width, stride, mask } = this;
    const s = this.slots;
    let o = this.gap;
    // The slot where the miss just ended, when nothing moved since (no sweep, no growth).
    if (o < 0 || !this.holds(0, key, this.missed)) {
      let i = this.hash(key, 0) >>> this.shift;
      while (s[i * stride + width] !== 0) i = (i + 1) & mask;
      o = i * stride;
    }
    this.moved();
    for (let w = 0; w < width; w++) s[o + w] = key[w]!;
    s[o + width] = (value + 1) | (generation << 31);
    this.size++;
  }

  /** Removes the entry at offset `o` (from `find`). */
  deleteAt(o: number): void {
    const { width, stride, mask, shift } = this;
    const s = this.slots;
    this.size--;
    this.moved();
    // Backward-shift deletion: move later entries of the run into the hole when their home
    // slot allows it, so every remaining key stays reachable from its home without tombstones.
    let hole = o / stride;
    for (let j = (hole + 1) & mask; s[j * stride + width] !== 0; j = (j + 1) & mask) {
      const at = j * stride;
      const home = this.hash(s, at) >>> shift;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        s.copyWithin(hole * stride, at, at + stride);
        hole = j;
      }
    }
    s[hole * stride + width] = 0;
  }

  /** Deletes every entry of `generation`, each value and its key's last word (the rule) to `fn`. */
  sweep(generation: number, fn?: (value: number, rule: number) => void): void {
    const { width, stride, mask } = this;
    const s = this.slots;
    // From just after an empty slot (there is one: the table is at most 3/4 full), once round:
    // no run wraps past the start, and a deletion only pulls entries back from later in the run,
    // so the entry shifted into a slot just emptied is looked at before moving on.
    let empty = 0;
    while (s[empty * stride + width] !== 0) empty++;
    for (let k = 1; k <= mask; k++) {
      const o = ((empty + k) & mask) * stride;
      for (let v = s[o + width]!; v !== 0 && v >>> 31 === generation; v = s[o + width]!) {
        fn?.((v & VALUE_MASK) - 1, s[o + width - 1]!);
        this.deleteAt(o);
      }
    }
  }

  /**
   * Twice the slots, in place: homes are the hash's top bits, so a key's new home is twice its
   * old one (or one more). Walking the old slots from the last, nearly every entry moves to a
   * slot at or after its own, which is already empty or holds an entry moved (MOVED set); the
   * rare entry not yet moved found in the way (a run that wrapped round, or a long one) gives up
   * its slot and is carried on to its own new place. No second
   * array, and the new half is written once (filled first: a page read before it is written
   * would fault twice, once for the zero page).
   */
  private grow(): void {
    const { width, stride } = this;
    const n = this.mask + 1;
    const m = n * 2;
    if (this.slots.length < m * stride) {
      const room = m * stride * 4 >= RESERVE_FROM_BYTES ? slotsFor(this.cap) : m;
      const bigger = new Int32Array(room * stride);
      bigger.set(this.slots.subarray(0, n * stride));
      this.slots = bigger;
    }
    this.slots.fill(0, n * stride, m * stride);
    this.moved();
    const mask = m - 1;
    this.mask = mask;
    this.shift--;
    const s = this.slots;
    const carry = this.carry;
    for (let p = n - 1; p >= 0; p--) {
      const from = p * stride;
      const stored = s[from + width]!;
      if (stored === 0 || (stored & MOVED) !== 0) continue;
      for (let w = 0; w <= width; w++) carry[w] = s[from + w]!;
      s[from + width] = 0;
      for (;;) {
        let i = this.hash(carry, 0) >>> this.shift;
        let there = s[i * stride + width]!;
        while ((there & MOVED) !== 0) {
          i = (i + 1) & mask;
          there = s[i * stride + width]!;
        }
        const o = i * stride;
        if (there === 0) {
          for (let w = 0; w < width; w++) s[o + w] = carry[w]!;
          s[o + width] = carry[width]! | MOVED;
          break;
        }
        // An entry not moved yet: this one takes its slot, and it is carried on.
        for (let w = 0; w <= width; w++) {
          const t = s[o + w]!;
          s[o + w] = carry[w]!;
          carry[w] = t;
        }
        s[o + width] = s[o + width]! | MOVED;
      }
    }
    for (let o = width; o < m * stride; o += this.stride) s[o] = s[o]! & ~MOVED;
  }

  /**
   * Mixes the key's words (murmur3's finaliser after each): attacker-chosen addresses spread
   * evenly.
   */
  private hash(words: Int32Array, from: number): number {
    if (this.width === 2) return this.hash2(words[from]!, words[from + 1]!);
    let h = this.seed;
    for (let w = 0; w < this.width; w++) {
      h = Math.imul(h ^ words[from + w]!, 0x9e3779b1);
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** `hash` of a two-word key, unrolled. */
  private hash2(a: number, b: number): number {
    let h = Math.imul(this.seed ^ a, 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h ^ b, 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
}

/** A power of two at least 4/3 of `cap`: the table stays at most three quarters full. */
function slotsFor(cap: number): number {
  let n = MIN_SLOTS;
  while (n * 3 < cap * 4) n *= 2;
  return n;
}

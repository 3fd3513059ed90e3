/**
 * The engine's per-(rule, address) index: a map capped at `max` entries that evicts the least
 * recently seen in two generations, the scheme of the quick-lru package (new and touched entries
 * live in `young`; when `young` holds half the cap it becomes `old` and the previous `old` is
 * dropped, so a hit costs one lookup and eviction is least-recently-seen done in bulk). IPv4 and
 * IPv6 keys live in open-addressing tables of typed arrays keyed by the address as 32-bit words:
 * a lookup is one hash and usually one cache line, with no per-key string or heap number. Other
 * keys (text) use a Map in the same generations, so the cap and eviction order cover all three.
 * The engine stores small integers (indexes into its typed-array tracker state, see
 * tracker-state.ts) and frees them in `onEvict`.
 */
export class TrackerTable {
  private young: Generation;
  private old: Generation;
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
    this.young = new Generation(this.generation);
    this.old = new Generation(this.generation);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The value for (IPv4 address as an unsigned 32-bit number, rule index), marking it seen. */
  getV4(v4: number, rule: number): number | undefined {
    return this.getWords(v4Key(v4, rule), 0);
  }

  /** Adds a value for a key that `getV4` just reported missing. */
  addV4(v4: number, rule: number, value: number): void {
    this.addWords(v4Key(v4, rule), 0, value);
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

  deleteV6(words: Int32Array, rule: number): boolean {
    return this.deleteWords(v6Key(words, rule), 1);
  }

  /** The value for a text key, marking it seen. */
  getText(key: string): number | undefined {
    const v = this.young.texts.get(key);
    if (v !== undefined) return v;
    const o = this.old.texts.get(key);
    if (o !== undefined) {
      this.old.texts.delete(key);
      this.makeRoom();
      this.young.texts.set(key, o);
    }
    return o;
  }

  /** Adds a value for a key that `getText` just reported missing. */
  addText(key: string, value: number): void {
    this.makeRoom();
    this.young.texts.set(key, value);
  }

  deleteText(key: string): boolean {
    return this.young.texts.delete(key) || this.old.texts.delete(key);
  }

  private getWords(key: Int32Array, kind: 0 | 1): number | undefined {
    const v = this.young.words[kind].get(key);
    if (v !== undefined) return v;
    const old = this.old.words[kind];
    const o = old.get(key);
    if (o !== undefined) {
      old.delete(key);
      this.makeRoom();
      this.young.words[kind].set(key, o);
    }
    return o;
  }

  private deleteWords(key: Int32Array, kind: 0 | 1): boolean {
    return this.young.words[kind].delete(key) || this.old.words[kind].delete(key);
  }

  private addWords(key: Int32Array, kind: 0 | 1, value: number): void {
    this.makeRoom();
    this.young.words[kind].set(key, value);
  }

  private makeRoom(): void {
    if (this.young.size < this.generation) return;
    this.evictions += this.old.size;
    const recycled = this.old;
    if (this.onEvict !== undefined) recycled.forEach(this.onEvict);
    // The new young generation takes as many keys as the one just filled: sized like it at once,
    // it skips the doublings (each a fresh table whose every page is a first-touch fault).
    recycled.clear(this.young);
    this.old = this.young;
    this.young = recycled;
  }
}

/**
 * Bytes of the key tables at most, for `max` entries: both generations, each with its IPv4 and
 * IPv6 tables grown to full size (tables never shrink; values live in the slots).
 */
export function trackerTableBytes(max: number): number {
  const generation = Math.max(1, Math.floor(max / 2));
  return 2 * slotsFor(generation) * (V4_STRIDE + V6_STRIDE) * 4;
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

class Generation {
  /** [IPv4 (address, rule), IPv6 (4 words, rule)]. */
  readonly words: [WordTable, WordTable];
  readonly texts = new Map<string, number>();

  constructor(cap: number) {
    this.words = [new WordTable(cap, 2, V4_STRIDE), new WordTable(cap, 5, V6_STRIDE)];
  }

  get size(): number {
    return this.words[0].size + this.words[1].size + this.texts.size;
  }

  forEach(fn: (value: number, rule: number) => void): void {
    this.words[0].forEach(fn);
    this.words[1].forEach(fn);
    for (const v of this.texts.values()) fn(v, -1);
  }

  /** Empties this generation, its tables at least as large as `like`'s. */
  clear(like: Generation): void {
    this.words[0].clear(like.words[0].slotCount);
    this.words[1].clear(like.words[1].slotCount);
    this.texts.clear();
  }
}

const MIN_SLOTS = 1024;

/**
 * Linear probing over keys of `width` 32-bit words, each slot's words side by side, then the
 * value + 1 (0 = empty), so a probe and its answer touch one cache line and nothing else. Kept at
 * most half full by doubling, up to the room `cap` entries need; deletion shifts the following
 * run back, so there are no tombstones to slow later probes.
 */
class WordTable {
  size = 0;
  private mask: number;
  /** 32 minus log2(slots): a key's home slot is its hash's top bits (see `grow`). */
  private shift: number;
  private slots: Int32Array;
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
  }

  get(key: Int32Array): number | undefined {
    const o = this.find(key);
    return o < 0 ? undefined : this.slots[o + this.width]! - 1;
  }

  /** Inserts a key known to be absent, with a value from 0 to 2^31 - 2. */
  set(key: Int32Array, value: number): void {
    if ((this.size + 1) * 2 > this.mask + 1 && this.mask + 1 < slotsFor(this.cap)) this.grow();
    this.place(key, 0, value + 1);
    this.size++;
  }

  delete(key: Int32Array): boolean {
    const found = this.find(key);
    if (found < 0) return false;
    const { width, stride, mask, shift } = this;
    const s = this.slots;
    this.size--;
    // Backward-shift deletion: move later entries of the run into the hole when their home
    // slot allows it, so every remaining key stays reachable from its home without tombstones.
    let hole = found / stride;
    for (let j = (hole + 1) & mask; s[j * stride + width] !== 0; j = (j + 1) & mask) {
      const o = j * stride;
      const home = this.hash(s, o) >>> shift;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        s.copyWithin(hole * stride, o, o + stride);
        hole = j;
      }
    }
    s[hole * stride + width] = 0;
    return true;
  }

  /** Each value with its key's last word (the rule index). */
  forEach(fn: (value: number, rule: number) => void): void {
    const { width, stride } = this;
    const s = this.slots;
    for (let o = 0; o < s.length; o += stride) {
      const v = s[o + width]!;
      if (v !== 0) fn(v - 1, s[o + width - 1]!);
    }
  }

  get slotCount(): number {
    return this.mask + 1;
  }

  /** Empties the table, with at least `slots` slots (a power of two within the cap's). */
  clear(slots: number): void {
    this.size = 0;
    if (slots <= this.mask + 1) {
      this.slots.fill(0);
      return;
    }
    this.mask = slots - 1;
    this.shift = 32 - Math.log2(slots);
    this.slots = new Int32Array(slots * this.stride);
  }

  /** The offset of the key's slot, or -1. */
  private find(key: Int32Array): number {
    const { width, stride, mask, shift } = this;
    const s = this.slots;
    if (width === 2) {
      // IPv4 keys, nearly every lookup: the loops unrolled.
      const a = key[0]!;
      const b = key[1]!;
      for (let i = this.hash2(a, b) >>> shift; ; i = (i + 1) & mask) {
        const o = i * stride;
        if (s[o + 2] === 0) return -1;
        if (s[o] === a && s[o + 1] === b) return o;
      }
    }
    for (let i = this.hash(key, 0) >>> shift; ; i = (i + 1) & mask) {
      const o = i * stride;
      if (s[o + width] === 0) return -1;
      let w = 0;
      while (w < width && s[o + w] === key[w]) w++;
      if (w === width) return o;
    }
  }

  private place(key: Int32Array, from: number, stored: number): void {
    const { width, stride, mask } = this;
    const s = this.slots;
    let i = this.hash(key, from) >>> this.shift;
    while (s[i * stride + width] !== 0) i = (i + 1) & mask;
    const o = i * stride;
    for (let w = 0; w < width; w++) s[o + w] = key[from + w]!;
    s[o + width] = stored;
  }

  /**
   * Twice the slots, keys placed again in the old table's order. Homes are the hash's top bits,
   * so a key's new home is twice its old one (or one more): the copy writes the new table front
   * to back, where low-bit homes would scatter every key to a random cache line.
   */
  private grow(): void {
    const old = this.slots;
    const n = (this.mask + 1) * 2;
    this.mask = n - 1;
    this.shift--;
    this.slots = new Int32Array(n * this.stride);
    for (let o = 0; o < old.length; o += this.stride)
      if (old[o + this.width] !== 0) this.place(old, o, old[o + this.width]!);
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

/** A power of two at least twice `cap`: the table stays at most half full. */
function slotsFor(cap: number): number {
  let n = MIN_SLOTS;
  while (n < cap * 2) n *= 2;
  return n;
}

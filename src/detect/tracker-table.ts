/**
 * The engine's per-(rule, address) counters: a map capped at `max` entries that evicts the least
 * recently seen in two generations, the scheme of the quick-lru package (new and touched entries
 * live in `young`; when `young` holds half the cap it becomes `old` and the previous `old` is
 * dropped, so a hit costs one lookup and eviction is least-recently-seen done in bulk). IPv4 keys,
 * nearly all of an attack, live in an open-addressing table of typed arrays keyed by the address
 * as a number: a lookup is one hash and usually one cache line, where a Map keyed by
 * `address × 4096 + rule` boxed a heap number per line and chased two more pointers. Other keys
 * (IPv6 text) use a Map in the same generations, so the cap and eviction order cover both.
 */
export class TrackerTable<T> {
  private young: Generation<T>;
  private old: Generation<T>;
  private readonly generation: number;
  /** Entries dropped because the cap was reached. */
  evictions = 0;

  /** @param max the cap (at least 2); an odd cap holds one fewer. */
  constructor(readonly max: number) {
    this.generation = Math.max(1, Math.floor(max / 2));
    this.young = new Generation(this.generation);
    this.old = new Generation(this.generation);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The value for (IPv4 address as an unsigned 32-bit number, rule index), marking it seen. */
  getV4(v4: number, rule: number): T | undefined {
    const v = this.young.nums.get(v4, rule);
    if (v !== undefined) return v;
    const o = this.old.nums.get(v4, rule);
    if (o !== undefined) {
      this.old.nums.delete(v4, rule);
      this.makeRoom();
      this.young.nums.set(v4, rule, o);
    }
    return o;
  }

  /** Adds a value for a key that `getV4` just reported missing. */
  addV4(v4: number, rule: number, value: T): void {
    this.makeRoom();
    this.young.nums.set(v4, rule, value);
  }

  deleteV4(v4: number, rule: number): boolean {
    return this.young.nums.delete(v4, rule) || this.old.nums.delete(v4, rule);
  }

  /** The value for a text key (IPv6), marking it seen. */
  getText(key: string): T | undefined {
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
  addText(key: string, value: T): void {
    this.makeRoom();
    this.young.texts.set(key, value);
  }

  deleteText(key: string): boolean {
    return this.young.texts.delete(key) || this.old.texts.delete(key);
  }

  private makeRoom(): void {
    if (this.young.size < this.generation) return;
    this.evictions += this.old.size;
    const recycled = this.old;
    recycled.clear();
    this.old = this.young;
    this.young = recycled;
  }
}

class Generation<T> {
  readonly nums: NumberTable<T>;
  readonly texts = new Map<string, T>();

  constructor(cap: number) {
    this.nums = new NumberTable(cap);
  }

  get size(): number {
    return this.nums.size + this.texts.size;
  }

  clear(): void {
    this.nums.clear();
    this.texts.clear();
  }
}

const MIN_SLOTS = 1024;
/** Int32 words per slot: address, rule index, value index + 1 (0 = empty), padding. */
const STRIDE = 4;

/**
 * Linear probing over (address, rule) pairs, each slot's words side by side so a probe touches
 * one cache line. Kept at most half full by doubling, up to the room `cap` entries need; deletion
 * shifts the following run back, so there are no tombstones to slow later probes.
 */
class NumberTable<T> {
  size = 0;
  private mask: number;
  private slots: Int32Array;
  private values: (T | undefined)[] = [];
  private free: number[] = [];
  /** Per table, so which addresses collide cannot be worked out in advance. */
  private readonly seed = (Math.random() * 0x1_0000_0000) | 0;

  constructor(private readonly cap: number) {
    const n = Math.min(MIN_SLOTS, slotsFor(cap));
    this.mask = n - 1;
    this.slots = new Int32Array(n * STRIDE);
  }

  get(v4: number, rule: number): T | undefined {
    const a = v4 | 0;
    const mask = this.mask;
    const s = this.slots;
    for (let i = hash(a ^ this.seed, rule) & mask; ; i = (i + 1) & mask) {
      const o = i * STRIDE;
      const idx = s[o + 2]!;
      if (idx === 0) return undefined;
      if (s[o] === a && s[o + 1] === rule) return this.values[idx - 1];
    }
  }

  /** Inserts a key known to be absent. */
  set(v4: number, rule: number, value: T): void {
    if ((this.size + 1) * 2 > this.mask + 1 && this.mask + 1 < slotsFor(this.cap)) this.grow();
    let idx = this.free.pop();
    if (idx === undefined) {
      idx = this.values.length;
      this.values.push(value);
    } else {
      this.values[idx] = value;
    }
    this.place(v4 | 0, rule, idx + 1);
    this.size++;
  }

  delete(v4: number, rule: number): boolean {
    const a = v4 | 0;
    const mask = this.mask;
    const s = this.slots;
    let i = hash(a ^ this.seed, rule) & mask;
    for (; ; i = (i + 1) & mask) {
      const o = i * STRIDE;
      if (s[o + 2] === 0) return false;
      if (s[o] === a && s[o + 1] === rule) break;
    }
    const idx = s[i * STRIDE + 2]! - 1;
    this.values[idx] = undefined;
    this.free.push(idx);
    this.size--;
    // Backward-shift deletion: move later entries of the run into the hole when their home
    // slot allows it, so every remaining key stays reachable from its home without tombstones.
    let hole = i;
    for (let j = (i + 1) & mask; s[j * STRIDE + 2] !== 0; j = (j + 1) & mask) {
      const o = j * STRIDE;
      const home = hash(s[o]! ^ this.seed, s[o + 1]!) & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        s.copyWithin(hole * STRIDE, o, o + STRIDE);
        hole = j;
      }
    }
    s[hole * STRIDE + 2] = 0;
    return true;
  }

  clear(): void {
    this.slots.fill(0);
    this.values = [];
    this.free = [];
    this.size = 0;
  }

  private place(a: number, rule: number, idx: number): void {
    const mask = this.mask;
    const s = this.slots;
    let i = hash(a ^ this.seed, rule) & mask;
    while (s[i * STRIDE + 2] !== 0) i = (i + 1) & mask;
    const o = i * STRIDE;
    s[o] = a;
    s[o + 1] = rule;
    s[o + 2] = idx;
  }

  private grow(): void {
    const old = this.slots;
    const n = (this.mask + 1) * 2;
    this.mask = n - 1;
    this.slots = new Int32Array(n * STRIDE);
    for (let o = 0; o < old.length; o += STRIDE)
      if (old[o + 2] !== 0) this.place(old[o]!, old[o + 1]!, old[o + 2]!);
  }
}

/** A power of two at least twice `cap`: the table stays at most half full. */
function slotsFor(cap: number): number {
  let n = MIN_SLOTS;
  while (n < cap * 2) n *= 2;
  return n;
}

/** Mixes the address and rule (murmur3's finaliser): attacker-chosen addresses spread evenly. */
function hash(a: number, rule: number): number {
  let h = a ^ Math.imul(rule, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

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
  /** Young entries that make a generation: half the cap, lowered when a byte budget stops a table's growth. */
  private generation: number;
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
    /**
     * Bytes in use (resident) the tables and `budget.others()` (the engine's tracker state) may
     * reach: a table that would grow past it does not, and the oldest generation goes instead
     * (docs/adr/0065). Unset: only the cap `max` bounds them.
     */
    private readonly budget?: { bytes: number; others: () => number },
  ) {
    this.generation = Math.max(1, Math.floor(max / 2));
    const both = this.generation * 2;
    const most = (stride: number) =>
      budget === undefined ? Number.POSITIVE_INFINITY : Math.floor(budget.bytes / (stride * 4));
    this.words = [
      new WordTable(both, 2, V4_STRIDE, most(V4_STRIDE)),
      new WordTable(both, 5, V6_STRIDE, most(V6_STRIDE)),
    ];
  }

  /** Bytes of the key tables in use: their slots (tables never shrink). */
  residentBytes(): number {
    return this.words[0].bytes() + this.words[1].bytes();
  }

  /**
   * Drops the oldest generation now, whatever the young hold: the byte budget is reached. The
   * young become old, so what was seen since the last drop stays until the next one.
   */
  evictOldest(): void {
    this.makeRoom(true);
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

  /** Replaces the value and `extra` of a key that `getV4` just found. */
  setV4(v4: number, rule: number, value: number, extra = 0): void {
    this.words[0].setAt(this.words[0].findAgain(v4Key(v4, rule)), value, extra);
  }

  /**
   * The `extra` of a key that `getV4` just found: 20 bits kept with the pair beside its value
   * (0 until set), in what was spare room in its slot.
   */
  extraV4(v4: number, rule: number): number {
    return this.words[0].extraAt(this.words[0].findAgain(v4Key(v4, rule)));
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

  /** Replaces the value and `extra` of a key that `getV6` just found. */
  setV6(words: Int32Array, rule: number, value: number, extra = 0): void {
    this.words[1].setAt(this.words[1].findAgain(v6Key(words, rule)), value, extra);
  }

  /** The `extra` of a key that `getV6` just found (see `extraV4`). */
  extraV6(words: Int32Array, rule: number): number {
    return this.words[1].extraAt(this.words[1].findAgain(v6Key(words, rule)));
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
    const table = this.words[kind];
    if (this.budget !== undefined && table.full()) this.withinBudget(table, this.budget);
    table.insert(key, value, this.young);
    this.youngCount++;
  }

  /**
   * Before an entry goes into a full table under a byte budget: the table may grow into what the
   * budget has left. When that is not enough for one more entry at 3/4 full, the table is as
   * large as it will be: the young now hand over at half of what it holds at 3/4 (so both
   * generations fit), and until then it fills up to 7/8, so that what is seen meanwhile leaves
   * the old generation before the old go. Out of `addWords`, which stays small enough to inline.
   */
  private withinBudget(table: WordTable, budget: { bytes: number; others: () => number }): void {
    table.ceiling = Math.floor(
      (budget.bytes - budget.others() - this.residentBytes() + table.bytes()) / table.slotBytes,
    );
    if (table.canGrow()) return;
    this.generation = Math.min(this.generation, Math.max(1, table.halfOfFull()));
    while (table.overfull() && this.size > 0) this.makeRoom(true);
  }

  /** Drops the old generation when the young are full, or now (`force`: the byte budget). */
  private makeRoom(force = false): void {
    if (this.youngCount < this.generation && !force) return;
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
 * both generations full (tables never shrink; values live in the slots). The power-of-two size
 * doubling alone reaches, the most `slotsFor` gives: a byte budget gives the pair cap it gave
 * before tables grew by less than doubling (docs/adr/0059).
 */
export function trackerTableBytes(max: number): number {
  const generation = Math.max(1, Math.floor(max / 2));
  return doubledSlotsFor(generation * 2) * (V4_STRIDE + V6_STRIDE) * 4;
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
 * A table growing to this many bytes or more (65,536 IPv4 slots, 32,768 IPv6 ones) takes, once,
 * an array for its largest size: the kernel commits it page by page as the table grows into it,
 * so a growth step neither copies to a fresh array nor first-touches pages the next step drops.
 * Smaller tables grow by copy: a small log stays small (docs/adr/0038). In bytes, not slots,
 * so the IPv6 table (twice the bytes a slot) stops copying at the same size (docs/adr/0042).
 */
const RESERVE_FROM_BYTES = 768 * 1024;
/**
 * The last word of a slot: its generation bit, the bit `grow` marks the entries it placed with
 * (which of its values means placed alternates from one growth to the next), value + 1.
 */
const GENERATION_BIT = 1 << 31;
const MOVED = 1 << 30;
const VALUE_MASK = MOVED - 1;
/**
 * The last key word holds the rule index in its low RULE_BITS (RULE_SLOTS in the engine) and
 * the entry's `extra` above them: 20 bits the engine keeps with a pair (its second pending
 * failure, docs/adr/0059) in a word whose top bits were always zero. Keys compare and hash on
 * the rule bits only.
 */
const RULE_BITS = 12;
const RULE_MASK = (1 << RULE_BITS) - 1;
/** `extra` values are from 0 to EXTRA_LIMIT - 1. */
export const EXTRA_LIMIT = 1 << (32 - RULE_BITS);
const TWO_TO_MINUS_32 = 2 ** -32;

/**
 * Linear probing over keys of `width` 32-bit words, each slot's words side by side, then a word
 * holding the value + 1 (0 = empty) and the entry's generation bit, so a probe and its answer
 * touch one cache line and nothing else. Kept at most 3/4 full by growing (see `grownSlots`), up
 * to the room `cap` entries need; deletion shifts the following run back,
 * so there are no tombstones to slow later probes.
 */
class WordTable {
  size = 0;
  /** Slots in the table: MIN_SLOTS, then the steps of `grownSlots` (not only powers of two). */
  private n: number;
  /** n / 2^32: a key's home slot is its 32-bit hash times this, rounded down (see `grow`). */
  private scale: number;
  /** The table is the first n * stride words; past them, room reserved to grow into. */
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
  /**
   * The MOVED bit of every entry between growths (0 or MOVED): `grow` marks the entries it
   * places with the other value, which is then every entry's, so no pass clears the marks.
   */
  private settled = 0;
  /** Per table, so which addresses collide cannot be worked out in advance. */
  private readonly seed = (Math.random() * 0x1_0000_0000) | 0;

  /**
   * The most slots the byte budget leaves this table now (TrackerTable sets it before an insert
   * into a full table); never above `most`.
   */
  ceiling = Number.POSITIVE_INFINITY;

  constructor(
    private readonly cap: number,
    private readonly width: number,
    private readonly stride: number,
    /** The most slots the byte budget could ever leave this table: its largest array. */
    private readonly most: number,
  ) {
    const n = Math.min(MIN_SLOTS, slotsFor(cap, stride));
    this.n = n;
    this.scale = n * TWO_TO_MINUS_32;
    this.slots = new Int32Array(n * stride);
    this.carry = new Int32Array(stride);
    this.missed = new Int32Array(width);
  }

  get slotBytes(): number {
    return this.stride * 4;
  }

  bytes(): number {
    return this.n * this.stride * 4;
  }

  /** Whether one more entry would take the table past 3/4 full (so `insert` grows it first). */
  full(): boolean {
    return (this.size + 1) * 4 > this.n * 3;
  }

  /** Past 7/8 full with one more entry: a table the budget stopped growing takes no more. */
  overfull(): boolean {
    return (this.size + 1) * 8 > this.n * 7;
  }

  /** Half the entries of the table at 3/4 full. */
  halfOfFull(): number {
    return Math.floor((this.n * 3) / 8);
  }

  /** Whether a full table can grow to hold one more entry at 3/4 full within its cap and `ceiling`. */
  canGrow(): boolean {
    const top = Math.min(slotsFor(this.cap, this.stride), this.ceiling, this.most);
    return top > this.n && top * 3 >= (this.size + 1) * 4;
  }

  /** The offset of the key's slot, or -1. */
  find(key: Int32Array): number {
    const { width, stride, n } = this;
    const s = this.slots;
    if (width === 2) return this.find2(key[0]!, key[1]!);
    const last = width - 1;
    for (let i = this.home(this.hash(key, 0)); ; i = i + 1 === n ? 0 : i + 1) {
      const o = i * stride;
      if (s[o + width] === 0) {
        this.missed.set(key);
        this.gap = o;
        return -1;
      }
      let w = 0;
      while (w < last && s[o + w] === key[w]) w++;
      if (w === last && (s[o + last]! & RULE_MASK) === key[last]) {
        this.hit = o;
        return o;
      }
    }
  }

  /** `find` of the two-word key (a, b), as int32: IPv4 keys, nearly every lookup, the loop unrolled. */
  find2(a: number, b: number): number {
    const { stride, n } = this;
    const s = this.slots;
    for (let i = this.home(this.hash2(a, b)); ; i = i + 1 === n ? 0 : i + 1) {
      const o = i * stride;
      if (s[o + 2] === 0) {
        this.missed[0] = a;
        this.missed[1] = b;
        this.gap = o;
        return -1;
      }
      if (s[o] === a && (s[o + 1]! & RULE_MASK) === b) {
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
    const last = this.width - 1;
    for (let w = 0; w < last; w++) if (words[o + w] !== key[w]) return false;
    return (words[o + last]! & RULE_MASK) === key[last];
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

  /** The `extra` of the slot at offset `o` (from `find`); 0 for an entry just inserted. */
  extraAt(o: number): number {
    return this.slots[o + this.width - 1]! >>> RULE_BITS;
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

  /** Replaces the value and `extra` in the slot at offset `o` (from `find`), keeping its generation. */
  setAt(o: number, value: number, extra: number): void {
    if (value < 0 || value >= VALUE_MASK) throw new RangeError(`tracker table value ${value} out of range`);
    const at = o + this.width;
    const s = this.slots;
    s[at] = (s[at]! & (GENERATION_BIT | MOVED)) | (value + 1);
    s[at - 1] = (s[at - 1]! & RULE_MASK) | (extra << RULE_BITS);
  }

  /** Inserts a key known to be absent (its last word a rule index, no `extra`), with a value from 0 to 2^30 - 2. */
  insert(key: Int32Array, value: number, generation: number): void {
    if (value < 0 || value >= VALUE_MASK) throw new RangeError(`tracker table value ${value} out of range`);
    if (this.full()) {
      const top = Math.min(slotsFor(this.cap, this.stride), this.ceiling, this.most);
      if (this.n < top) {
        const m = Math.min(grownSlots(this.n, this.stride), top);
        this.reserve(m);
        this.grow(m);
      }
    }
    const { width, stride, n } = this;
    const s = this.slots;
    let o = this.gap;
    // The slot where the miss just ended, when nothing moved since (no sweep, no growth).
    if (o < 0 || !this.holds(0, key, this.missed)) {
      let i = this.home(this.hash(key, 0));
      while (s[i * stride + width] !== 0) i = i + 1 === n ? 0 : i + 1;
      o = i * stride;
    }
    this.moved();
    for (let w = 0; w < width; w++) s[o + w] = key[w]!;
    s[o + width] = (value + 1) | (generation << 31) | this.settled;
    this.size++;
  }

  /** Removes the entry at offset `o` (from `find`). */
  deleteAt(o: number): void {
    const { width, stride, n } = this;
    const s = this.slots;
    this.size--;
    this.moved();
    // Backward-shift deletion: move later entries of the run into the hole when their home
    // slot allows it, so every remaining key stays reachable from its home without tombstones.
    // Distances are round the table: (j - x) mod n.
    let hole = o / stride;
    for (let j = hole + 1 === n ? 0 : hole + 1; s[j * stride + width] !== 0; j = j + 1 === n ? 0 : j + 1) {
      const at = j * stride;
      const fromHome = j - this.home(this.hashWords(s, at));
      const fromHole = j - hole;
      if ((fromHome < 0 ? fromHome + n : fromHome) >= (fromHole < 0 ? fromHole + n : fromHole)) {
        s.copyWithin(hole * stride, at, at + stride);
        hole = j;
      }
    }
    s[hole * stride + width] = 0;
  }

  /** Deletes every entry of `generation`, each value and its key's rule to `fn`. */
  sweep(generation: number, fn?: (value: number, rule: number) => void): void {
    const { width, stride, n } = this;
    const s = this.slots;
    // From just after an empty slot (there is one: the table is at most 3/4 full), once round:
    // no run wraps past the start, and a deletion only pulls entries back from later in the run,
    // so the entry shifted into a slot just emptied is looked at before moving on.
    let empty = 0;
    while (s[empty * stride + width] !== 0) empty++;
    for (let k = 1; k < n; k++) {
      const i = empty + k;
      const o = (i >= n ? i - n : i) * stride;
      for (let v = s[o + width]!; v !== 0 && v >>> 31 === generation; v = s[o + width]!) {
        fn?.((v & VALUE_MASK) - 1, s[o + width - 1]! & RULE_MASK);
        this.deleteAt(o);
      }
    }
  }

  /**
   * An array with room for `m` slots, the table copied in, when the slots have none: apart from
   * `grow`, whose loop must not meet code its earlier runs never took (see there).
   */
  private reserve(m: number): void {
    const { stride } = this;
    if (this.slots.length >= m * stride) return;
    // Under a byte budget (`most` finite) the largest array is reserved at the first growth: the
    // copies a small table would leave (≈ 0.75 MB a table, resident in a process that never runs
    // a full collection) are resident memory the budget does not see (docs/adr/0065).
    const largest = m * stride * 4 >= RESERVE_FROM_BYTES || this.most !== Number.POSITIVE_INFINITY;
    const room = largest ? Math.min(slotsFor(this.cap, stride), this.most) : m;
    const bigger = new Int32Array(room * stride);
    bigger.set(this.slots.subarray(0, this.n * stride));
    this.slots = bigger;
  }

  /**
   * `m` slots (`grownSlots`), in place: a key's home is its hash scaled to the table, so its
   * new home is at or after its old one (twice it, or 30 % more). Walking the old slots from the
   * last, nearly every entry moves to a slot at or after its own, which is already empty or
   * holds an entry moved (its MOVED bit not `settled`); the rare entry not yet moved found in the way (a run that
   * wrapped round, a long one, or one near the start) gives up its slot and is carried on to its
   * own new place. No second array, and the new part is written once (filled first: a page read
   * before it is written would fault twice, once for the zero page).
   */
  private grow(m: number): void {
    const { width, stride } = this;
    const n = this.n;
    this.slots.fill(0, n * stride, m * stride);
    this.moved();
    this.n = m;
    this.scale = m * TWO_TO_MINUS_32;
    const s = this.slots;
    const carry = this.carry;
    const placed = this.settled ^ MOVED;
    for (let p = n - 1; p >= 0; p--) {
      const from = p * stride;
      const stored = s[from + width]!;
      if (stored === 0 || (stored & MOVED) === placed) continue;
      for (let w = 0; w <= width; w++) carry[w] = s[from + w]!;
      s[from + width] = 0;
      // The carried entry swaps with what its slot holds: nothing (done), or an entry not moved
      // yet, carried on in turn. One path for both, and one hash for both key widths: growth is
      // rare, so a branch first taken after TurboFan compiled this loop (no type feedback)
      // deoptimises it, and the rest of that growth runs in the interpreter, ten times slower.
      for (let there = 1; there !== 0; ) {
        let i = this.home(this.hashWords(carry, 0));
        there = s[i * stride + width]!;
        while (there !== 0 && (there & MOVED) === placed) {
          i = i + 1 === m ? 0 : i + 1;
          there = s[i * stride + width]!;
        }
        const o = i * stride;
        for (let w = 0; w <= width; w++) {
          const t = s[o + w]!;
          s[o + w] = carry[w]!;
          carry[w] = t;
        }
        s[o + width] = (s[o + width]! & ~MOVED) | placed;
      }
    }
    this.settled = placed;
  }

  /** The home slot of a 32-bit hash: its fraction of 2^32 scaled to the slots, so the top bits decide. */
  private home(hash: number): number {
    return (hash * this.scale) | 0;
  }

  /**
   * Mixes the key's words (murmur3's finaliser after each; the rule bits of the last): attacker-
   * chosen addresses spread evenly.
   */
  private hash(words: Int32Array, from: number): number {
    if (this.width === 2) return this.hash2(words[from]!, words[from + 1]!);
    return this.hashWords(words, from);
  }

  /** `hash` without the branch to `hash2`: the same value for keys of either width. */
  private hashWords(words: Int32Array, from: number): number {
    const last = this.width - 1;
    let h = this.seed;
    for (let w = 0; w <= last; w++) {
      h = Math.imul(h ^ (w === last ? words[from + w]! & RULE_MASK : words[from + w]!), 0x9e3779b1);
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
    h = Math.imul(h ^ (b & RULE_MASK), 0x9e3779b1);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
}

/**
 * The next size of a table of `n` slots of `stride` words. Doubling while a step copies to a new
 * array (each old one is garbage that, once promoted, stays resident until a full collection),
 * up to the step that reserves the array for the largest size; then 30 % more at a time, in
 * place. Doubling there left a table that had just outgrown one size half empty (2^19 slots for
 * 296,005 IPv4 pairs: 6.3 MB where 4.9 MB do); by 30 % it is at least 57 % full once grown, at
 * the cost of moving each entry about four times over its growth instead of twice
 * (docs/adr/0059).
 */
function grownSlots(n: number, stride: number): number {
  return n * stride * 4 < RESERVE_FROM_BYTES ? n * 2 : n + Math.floor((n * 3) / 10);
}

/**
 * The largest table for `cap` entries: the first size the steps reach that is at least 4/3 of
 * it (so at most 3/4 full), or the power of two doubling alone reached if smaller (the last
 * step stops there, see `trackerTableBytes`).
 */
function slotsFor(cap: number, stride: number): number {
  let n = MIN_SLOTS;
  while (n * 3 < cap * 4) n = grownSlots(n, stride);
  return Math.min(n, doubledSlotsFor(cap));
}

/** The power of two at least 4/3 of `cap`: the size doubling alone reached. */
function doubledSlotsFor(cap: number): number {
  let n = MIN_SLOTS;
  while (n * 3 < cap * 4) n *= 2;
  return n;
}

/**
 * What the engine remembers per tracked (rule, address), in typed arrays indexed by a slot
 * number instead of one object (and one array of times) per address: an attack from half a
 * million addresses is then a few large arrays the garbage collector never walks. A slot's
 * record is `stride` int32 words, side by side so that a failure usually costs one cache miss
 * here: four int16 (`meta`: the ring's head, its count, bans so far, FLAGS), then its ring of
 * `ring` failure times (`times`). The ban end (epoch ms; Infinity = permanent), read only when
 * FLAGS says BANNED, is a float64 in the ring's first two words: a ban empties the ring, and
 * counting starts again only once FLAGS no longer says BANNED (`banEnd`; apart, in `until`, for
 * rings of fewer than two times). The arrays are allocated once for `max` slots, when
 * the first slot is taken: that large a zeroed allocation is mapped memory the kernel commits
 * page by page as slots are first written, and slots are handed out in order (then from a free
 * list), so resident memory follows the number of trackers used without doubling steps, their
 * copies, or old arrays left for the garbage collector. Not before the first slot: a state no
 * rule uses (one per distinct maxretry) reserves nothing, and V8 runs a full collection when
 * array buffers pass 64 MB, which a replay otherwise never needs (docs/adr/0032).
 *
 * Failure times are int32 tenths of a second since the first time this state saw (`tick`): half
 * the bytes of a double, ±6.8 years of range, and windows 100 ms coarse at worst (a failure may
 * leave the window up to 100 ms early), finer than syslog's whole seconds.
 */
export class TrackerState {
  /** Int32 words per slot: META_WORDS, then the ring. */
  readonly stride: number;
  /** The records as int32: slot s's failure times start at `s * stride + META_WORDS`. */
  times = EMPTY_INT32;
  /** The same records as int16: slot s's fields are at `s * stride * 2` + HEAD, COUNT, BANS, FLAGS. */
  meta = EMPTY_INT16;
  /** Ban end per slot when the ring is too short to hold it (see `banEnd`). */
  private until = EMPTY_FLOAT64;
  private next = 0;
  /**
   * Freed slots, last freed first: a chain through the records themselves (a freed record's first
   * word holds the next one, -1 ends it), so freeing takes no memory of its own (docs/adr/0065).
   */
  private freeHead = -1;
  private base = Number.NaN;

  constructor(
    /** Failure times kept per slot: maxretry - 1 of the rules that share this state (see Engine.fail). */
    readonly ring: number,
    private readonly max: number,
  ) {
    this.stride = META_WORDS + ring;
  }

  /** Epoch ms as a failure time: tenths of a second since the first time seen, clamped to int32. */
  tick(ms: number): number {
    if (Number.isNaN(this.base)) this.base = ms;
    const t = Math.floor((ms - this.base) / 100);
    return t > 0x7fffffff ? 0x7fffffff : t < -0x80000000 ? -0x80000000 : t;
  }

  /** A cleared slot. */
  alloc(): number {
    let s: number;
    if (this.freeHead >= 0) {
      s = this.freeHead;
      this.freeHead = this.times[s * this.stride]!;
    } else {
      if (this.next === this.max) throw new RangeError('tracker state is full');
      if (this.next === 0) this.reserve();
      s = this.next++;
    }
    const m = s * this.stride * 2;
    this.meta[m + HEAD] = 0;
    this.meta[m + COUNT] = 0;
    this.meta[m + BANS] = 0;
    this.meta[m + FLAGS] = 0;
    return s;
  }

  /** The ban end of a slot whose FLAGS say BANNED. */
  banEnd(slot: number): number {
    if (this.ring < 2) return this.until[slot]!;
    const at = slot * this.stride + META_WORDS;
    WORDS[0] = this.times[at]!;
    WORDS[1] = this.times[at + 1]!;
    return WIDE[0]!;
  }

  /** Sets the ban end of a slot whose ring is empty (COUNT 0) and keeps it so until FLAGS drop BANNED. */
  setBanEnd(slot: number, ms: number): void {
    if (this.ring < 2) {
      this.until[slot] = ms;
      return;
    }
    WIDE[0] = ms;
    const at = slot * this.stride + META_WORDS;
    this.times[at] = WORDS[0]!;
    this.times[at + 1] = WORDS[1]!;
  }

  /**
   * Bytes of the arrays this state has written so far, hence resident: the records (and ban ends
   * kept apart) up to the highest slot handed out. Slots freed and taken again cost nothing more,
   * so this only grows when `alloc` finds no free slot.
   */
  residentBytes(): number {
    return this.next * this.slotBytes;
  }

  /** What `residentBytes` grows by when `alloc` takes a new slot. */
  get slotBytes(): number {
    return this.stride * 4 + (this.ring < 2 ? 8 : 0);
  }

  /** Whether `alloc` would take a slot never used before (none freed to take again). */
  get exhausted(): boolean {
    return this.freeHead < 0;
  }

  /** Frees a slot; nothing reads its record until `alloc` hands it out again. */
  release(slot: number): void {
    this.times[slot * this.stride] = this.freeHead;
    this.freeHead = slot;
  }

  private reserve(): void {
    const max = this.max;
    this.times = new Int32Array(max * this.stride);
    this.meta = new Int16Array(this.times.buffer);
    if (this.ring < 2) this.until = new Float64Array(max);
  }
}

const EMPTY_INT32 = new Int32Array(0);
const EMPTY_INT16 = new Int16Array(0);
const EMPTY_FLOAT64 = new Float64Array(0);
/** A float64 as two int32 words (in memory order), for ban ends kept in a ring. */
const WIDE = new Float64Array(1);
const WORDS = new Int32Array(WIDE.buffer);

/** Int32 words of a record before its ring: four int16 fields, each below 2^15 (a ring holds at most 10,000 times). */
export const META_WORDS = 2;
/** Int16 offsets of the fields in a record (`meta`). */
export const HEAD = 0;
export const COUNT = 1;
export const BANS = 2;
export const FLAGS = 3;
/** FLAGS bits: never to be banned; banned until `until`. */
export const SKIPPED = 1;
export const BANNED = 2;

/**
 * Bytes of tracker state at most, for `max` slots of `ring` failure times (all resident when all
 * used). Ban ends are counted apart as they were before rings held them, and 4 bytes a slot for
 * the free list there was before freed slots were chained through their records, so that a byte
 * budget gives the pair cap it gave then (docs/adr/0059, 0065).
 */
export function trackerStateBytes(max: number, ring: number): number {
  return max * ((META_WORDS + ring) * 4 + 8 + 4);
}

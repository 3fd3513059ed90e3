/**
 * What the engine remembers per tracked (rule, address), in typed arrays indexed by a slot
 * number instead of one object (and one array of times) per address: an attack from half a
 * million addresses is then a few large arrays the garbage collector never walks, and a tracker's
 * fields sit next to each other in memory. Slots are handed out from a free list and the arrays
 * grow by doubling up to `max` slots.
 *
 * Per slot: a ring of `ring` failure times, the ban end (epoch ms; Infinity = permanent, 0 = not
 * banned), and four int32: the ring's head, its count, bans so far, and whether the address must
 * never be banned. Failure times are int32 tenths of a second since the first time this state
 * saw (`tick`): half the bytes of a double, ±6.8 years of range, and windows 100 ms coarse at
 * worst (a failure may leave the window up to 100 ms early), finer than syslog's whole seconds.
 */
export class TrackerState {
  /** Failure times (see `tick`), `ring` per slot. */
  times: Int32Array;
  /** Ban end per slot. */
  until: Float64Array;
  /** HEAD, COUNT, BANS, SKIP per slot. */
  meta: Int32Array;
  private capacity: number;
  private next = 0;
  private free: Int32Array;
  private freeCount = 0;
  private base = Number.NaN;

  constructor(
    /** Failure times kept per slot: the largest maxretry of the engine's rules. */
    readonly ring: number,
    private readonly max: number,
  ) {
    this.capacity = Math.min(max, 1024);
    this.times = new Int32Array(this.capacity * ring);
    this.until = new Float64Array(this.capacity);
    this.meta = new Int32Array(this.capacity * META);
    this.free = new Int32Array(this.capacity);
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
    if (this.freeCount > 0) s = this.free[--this.freeCount]!;
    else {
      if (this.next === this.capacity) this.grow();
      s = this.next++;
    }
    const m = s * META;
    this.meta[m + HEAD] = 0;
    this.meta[m + COUNT] = 0;
    this.meta[m + BANS] = 0;
    this.meta[m + SKIP] = 0;
    this.until[s] = 0;
    return s;
  }

  release(slot: number): void {
    this.free[this.freeCount++] = slot;
  }

  private grow(): void {
    const n = Math.min(this.max, this.capacity * 2);
    if (n <= this.capacity) throw new RangeError('tracker state is full');
    this.times = grown(this.times, n * this.ring);
    this.until = grown(this.until, n);
    this.meta = grown(this.meta, n * META);
    this.free = grown(this.free, n);
    this.capacity = n;
  }
}

/** Int32 fields per slot in `meta`, and their offsets. */
export const META = 4;
export const HEAD = 0;
export const COUNT = 1;
export const BANS = 2;
export const SKIP = 3;

/** Bytes of tracker state at most, for `max` slots of `ring` failure times (growth stops at max). */
export function trackerStateBytes(max: number, ring: number): number {
  return max * (ring * 4 + 8 + META * 4 + 4);
}

function grown<A extends Float64Array | Int32Array>(a: A, length: number): A {
  const b = new (a.constructor as new (n: number) => A)(length);
  b.set(a);
  return b;
}

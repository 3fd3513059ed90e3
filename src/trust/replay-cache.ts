/**
 * Remembers the ids of accepted envelopes until their timestamp leaves the acceptance window, so
 * a captured message cannot be played again. Memory is bounded: past `maxEntries` the entry that
 * expires first goes (counted in `evicted`, which should stay 0; raise the bound if it does not).
 */
export class ReplayCache {
  readonly maxEntries: number;
  /** Replays refused since creation. */
  replays = 0;
  /** Entries dropped early because the cache was full. */
  evicted = 0;
  // Map keeps insertion order; timestamps arrive roughly in order, so sweeping from the front
  // finds the expired ones without a heap. An entry out of order lingers at most one window.
  private readonly expiry = new Map<string, number>();

  constructor(opts: { maxEntries?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? 100_000;
  }

  get size(): number {
    return this.expiry.size;
  }

  /**
   * Records `id` as seen until `expiresAt` (ms). Returns false, and counts a replay, when the id is
   * already known and not yet expired.
   */
  check(id: string, expiresAt: number, now: number): boolean {
    this.sweep(now);
    const known = this.expiry.get(id);
    if (known !== undefined && known > now) {
      this.replays++;
      return false;
    }
    this.expiry.delete(id);
    while (this.expiry.size >= this.maxEntries) {
      const oldest = this.expiry.keys().next().value as string;
      this.expiry.delete(oldest);
      this.evicted++;
    }
    this.expiry.set(id, expiresAt);
    return true;
  }

  private sweep(now: number): void {
    for (const [id, exp] of this.expiry) {
      if (exp > now) break;
      this.expiry.delete(id);
    }
  }
}

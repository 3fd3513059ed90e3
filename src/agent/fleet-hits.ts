import { type HitsBody, type HitsEntry, MAX_HITS_ENTRIES, MAX_HITS_PER_ENTRY } from '../core/fleet-hits.js';

export interface FleetHitBatcherOptions {
  /** Seals and delivers one batch; a rejection counts the batch as failed (it is not retried). */
  send: (body: HitsBody) => Promise<void>;
  /** How often pending hits are sent, default 2 s. */
  intervalMs?: number;
  /** Entries per batch, default (and at most) MAX_HITS_ENTRIES. */
  maxEntries?: number;
  /** Least time between two batches, default 500 ms: at most 2 batches a second. */
  minGapMs?: number;
  now?: () => number;
}

/**
 * Collects the failures rules counted below their local threshold (Engine onBelowThreshold) and
 * sends them to the hub in small batches, coalesced per (address, rule). Bounded in size (at most
 * `maxEntries` pending; a new address past that is dropped and counted) and in rate (one batch
 * per interval, or earlier when full, never two within `minGapMs`).
 *
 * Best effort by design, unlike reports: a lost batch only delays a fleet ban while the attack
 * goes on, and a durable queue would replay stale counts after an outage.
 */
export class FleetHitBatcher {
  /** Batches sent, batches whose delivery failed, entries sent, hits dropped because full. */
  readonly stats = { batches: 0, failed: 0, entries: 0, dropped: 0 };
  /** Rule → address → entry: two lookups of strings the engine already has, no key to build. */
  private pending = new Map<string, Map<string, HitsEntry>>();
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  private early: NodeJS.Timeout | null = null;
  private lastSent = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly max: number;
  private readonly now: () => number;

  constructor(private readonly o: FleetHitBatcherOptions) {
    this.max = Math.min(MAX_HITS_ENTRIES, Math.max(1, o.maxEntries ?? MAX_HITS_ENTRIES));
    this.now = o.now ?? Date.now;
  }

  /** Starts the flush timer. */
  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.flush(), this.o.intervalMs ?? 2000);
    this.timer.unref();
  }

  get size(): number {
    return this.count;
  }

  /** One failure of `ip` under `rule` (the engine's hook: cheap, never throws). */
  add(rule: string, ip: string): void {
    if (this.closed) return;
    let byIp = this.pending.get(rule);
    const e = byIp?.get(ip);
    if (e !== undefined) {
      if (e.hits < MAX_HITS_PER_ENTRY) e.hits++;
      return;
    }
    if (this.count >= this.max) {
      this.stats.dropped++;
      this.flushSoon();
      return;
    }
    if (byIp === undefined) {
      byIp = new Map();
      this.pending.set(rule, byIp);
    }
    // The address may be a slice of a whole read chunk: a flat copy keeps it from pinning that.
    const target = ` ${ip}`.slice(1);
    byIp.set(target, { target, rule, hits: 1 });
    if (++this.count >= this.max) this.flushSoon();
  }

  /** Sends what is pending now (unless a batch went out less than `minGapMs` ago). */
  flush(): Promise<void> {
    if (this.count === 0) return this.inFlight;
    const now = this.now();
    if (now - this.lastSent < (this.o.minGapMs ?? 500)) {
      this.flushSoon();
      return this.inFlight;
    }
    this.lastSent = now;
    const entries: HitsEntry[] = [];
    for (const byIp of this.pending.values()) for (const e of byIp.values()) entries.push(e);
    this.pending = new Map();
    this.count = 0;
    this.stats.batches++;
    this.stats.entries += entries.length;
    const sent = this.o.send({ entries }).catch(() => {
      this.stats.failed++;
    });
    this.inFlight = this.inFlight.then(() => sent);
    return this.inFlight;
  }

  /** Stops the timers, sends what is pending once (bypassing the rate gap) and waits for it. */
  async close(): Promise<void> {
    if (this.closed) return this.inFlight;
    if (this.timer) clearInterval(this.timer);
    if (this.early) clearTimeout(this.early);
    this.timer = this.early = null;
    this.lastSent = Number.NEGATIVE_INFINITY;
    await this.flush();
    this.closed = true;
  }

  /** A full batch goes out as soon as the rate gap allows, not at the next tick. */
  private flushSoon(): void {
    if (this.early || this.closed) return;
    const wait = Math.max(0, (this.o.minGapMs ?? 500) - (this.now() - this.lastSent));
    this.early = setTimeout(() => {
      this.early = null;
      void this.flush();
    }, wait);
    this.early.unref();
  }
}

import type { Logger } from '../core/logger.js';
import { collectGarbage } from '../core/release-memory.js';
import type { Firewall } from '../firewall/types.js';

/**
 * Serialises firewall commits and coalesces bursts: changes staged while a commit runs go out in
 * the next one, so a flood of decisions becomes a few `nft -f` transactions. A failed commit keeps
 * its batch staged (Firewall contract) and is retried after `retryMs`.
 */
/**
 * Staged changes that mark a bulk burst; such a burst keeps gathering in steps of BURST_WAIT_MS
 * while it still grows, for at most BURST_MAX_WAIT_MS or BURST_MAX elements. Measured in a
 * namespace: 20,000 elements took 1.76 s as 40 commits of 500 and 0.29 s as 4 commits of 5,000.
 * Single bans never reach BURST, so they keep the short path.
 */
const BURST = 400;
const BURST_WAIT_MS = 25;
const BURST_MAX_WAIT_MS = 250;
const BURST_MAX = 20_000;

/**
 * Elements committed after which the garbage they left is collected (and the C heap trimmed):
 * during a bulk load every COLLECT_EVERY, and once a burst of at least COLLECT_AFTER is over.
 */
const COLLECT_EVERY = 100_000;
const COLLECT_AFTER = 10_000;
/**
 * A burst counts as over once no commit came for this long. A bulk import reaches an agent as
 * envelopes of 500 whose commits leave the staging empty between them: collecting each time the
 * loop ran dry put one or two full collections inside a 20,000-decision import, 15-17% of the
 * agent's CPU for it (ADR 0066), while the next envelope was already on its way.
 */
const COLLECT_QUIET_MS = 1_000;

export class Committer {
  private running: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lock: Promise<void> | null = null;
  commits = 0;
  failures = 0;
  /** Elements committed since the last collection. */
  private sinceCollect = 0;
  /** Pending while a burst may still be going on: the collection after it. */
  private collectTimer: NodeJS.Timeout | null = null;
  /** Called after each kernel commit with its duration in seconds (metrics). */
  onCommit?: (seconds: number, ok: boolean) => void;

  constructor(
    private readonly fw: Firewall,
    private readonly log: Logger,
    private readonly retryMs = 2000,
    /** 0 (default): the next event-loop turn, no timer; what arrived in this I/O round rides along. */
    private readonly delayMs = 0,
    /** The collection after a burst and the quiet it waits for (tests). */
    private readonly gc: { collect?: () => void; quietMs?: number } = {},
  ) {}

  /** Commits what is staged as soon as possible; resolves once it is in the kernel (or failed). */
  schedule(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Waits for the commit in flight and commits anything still staged. */
  async flush(): Promise<void> {
    if (this.running) await this.running;
    if (this.fw.pending() > 0) await this.schedule();
  }

  /**
   * Runs `fn` with no commit of ours in flight or starting (reconcile: it reads the kernel and
   * commits its repairs; an element committed between its read and its diff would be deleted).
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.running || this.lock) await (this.running ?? this.lock);
    let release!: () => void;
    this.lock = new Promise<void>((r) => {
      release = r;
    });
    try {
      return await fn();
    } finally {
      this.lock = null;
      release();
      if (this.fw.pending() > 0) void this.schedule();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.collectTimer) clearTimeout(this.collectTimer);
    this.collectTimer = null;
  }

  private async loop(): Promise<void> {
    // A lone ban goes on the next turn of the event loop: with an in-process kernel driver a
    // timer here would be most of its latency. Whatever was staged in this I/O round rides
    // along, and a growing bulk burst keeps gathering below.
    if (this.delayMs > 0) await new Promise<void>((r) => setTimeout(r, this.delayMs));
    else await new Promise<void>((r) => setImmediate(r));
    do {
      this.again = false;
      while (this.lock) await this.lock;
      if (this.fw.pending() === 0) continue;
      // A bulk import is arriving (envelopes of hundreds): a kernel commit costs about the same
      // for 500 elements as for 5,000 on a large interval set, so let the next envelopes join.
      // A lone ban has nothing to gather: no async call and microtask for it (ADR 0066).
      if (this.fw.pending() >= BURST) await this.gatherBurst();
      const t0 = performance.now();
      try {
        const r = await this.fw.commit();
        this.commits++;
        this.onCommit?.((performance.now() - t0) / 1000, true);
        this.sinceCollect += r.added + r.deleted;
        if (this.sinceCollect >= COLLECT_EVERY) this.collect();
      } catch (err) {
        this.failures++;
        this.onCommit?.((performance.now() - t0) / 1000, false);
        this.log.error(
          { err: (err as Error).message, backend: this.fw.name },
          'firewall commit failed; will retry',
        );
        this.retryLater();
        return;
      }
    } while (this.again);
    if (this.sinceCollect >= COLLECT_AFTER) this.collectWhenQuiet();
  }

  private collect(): void {
    this.sinceCollect = 0;
    if (this.collectTimer) clearTimeout(this.collectTimer);
    this.collectTimer = null;
    (this.gc.collect ?? collectGarbage)();
  }

  /** {@link collect} once no commit came for {@link COLLECT_QUIET_MS}; each later commit restarts the wait. */
  private collectWhenQuiet(): void {
    if (this.stopped) return;
    if (this.collectTimer) this.collectTimer.refresh();
    else {
      this.collectTimer = setTimeout(() => {
        this.collectTimer = null;
        if (this.running) this.collectWhenQuiet();
        else if (this.sinceCollect >= COLLECT_AFTER) this.collect();
      }, this.gc.quietMs ?? COLLECT_QUIET_MS);
      this.collectTimer.unref();
    }
  }

  private async gatherBurst(): Promise<void> {
    let waited = 0;
    let before = this.fw.pending();
    while (before >= BURST && before < BURST_MAX && waited < BURST_MAX_WAIT_MS) {
      await new Promise<void>((r) => setTimeout(r, BURST_WAIT_MS));
      waited += BURST_WAIT_MS;
      const now = this.fw.pending();
      if (now === before) return;
      before = now;
    }
  }

  private retryLater(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.schedule();
    }, this.retryMs);
    this.retryTimer.unref();
  }
}

import { releaseStartupMemory } from '../core/release-memory.js';
import { holdOptimizingCompiler } from '../core/startup-tiering.js';

export interface IdleMemoryOptions {
  /**
   * Work (decisions, log lines, bans to restore) since the agent was last quiet that counts as a
   * burst: the optimising compiler is let go for it. Default 2,000: four full envelopes, or one
   * bulk request of the size operators send. At 10,000 (one catch-up page) a freshly started
   * agent took half of a 20,000-decision flood in baseline code, 20 µs a decision against 17.5
   * (ADR 0061); a start-up catch-up of a few hundred decisions stays well below it.
   */
  burstUnits?: number;
  /** Time without work after which the agent counts as idle again. Default 5 s. */
  quietMs?: number;
  /** At most one collection this often, however the work comes and goes. Default 60 s. */
  minGapMs?: number;
  /**
   * A quiet period collects only when RSS has grown this much since the last collection. Default
   * 1 MiB.
   */
  minGrowthBytes?: number;
  /** V8's low-memory collection (resolves to whether it ran). */
  collect?: () => Promise<boolean>;
  /** Takes a hold on the optimising compiler; returns its release. */
  hold?: () => () => void;
  rss?: () => number;
  now?: () => number;
}

/**
 * Keeps an agent that mostly waits as small as it was made, after start-up and after each burst
 * of work (ADR 0056):
 *
 * - V8's optimising compiler is held while work is light. Once any function is hot enough
 *   (timers make node's own argument checks hot within a minute of idling), TurboFan compiles it
 *   and touches ≈ 3.3 MB of its own code in the node binary and ≈ 1-2 MB of compile memory,
 *   resident for good: an idle agent went from 60 to 66 MB, and one that caught up a few hundred
 *   decisions at start read 64 MB at once. Below a few thousand decisions the compilation costs
 *   more CPU than it saves (a 5,000-decision catch-up: 510 ms of start-up CPU held, 570 not).
 *   A burst ({@link IdleMemoryOptions.burstUnits} units of work before the agent is quiet again,
 *   or one piece that size: a restore, a catch-up page) lets the compiler go before it runs, so
 *   heavy work is optimised as before; it is held again once the agent is quiet.
 * - V8's low-memory collection (core/release-memory.ts) runs once start-up is over and again
 *   after later work, once the agent has been quiet a few seconds, when RSS grew since the last
 *   one, at most once a minute. While nothing happens, one unref'd timer looks once a minute.
 */
export class IdleMemory {
  private readonly burstUnits: number;
  private readonly quietMs: number;
  private readonly minGapMs: number;
  private readonly minGrowth: number;
  private readonly collectNow: () => Promise<boolean>;
  private readonly hold: () => () => void;
  private readonly rss: () => number;
  private readonly now: () => number;
  /** The compiler hold's release while it is held. */
  private release: (() => void) | undefined;
  /** Work since the agent was last quiet, while the compiler is held. */
  private busyUnits = 0;
  private lastWork = Number.NEGATIVE_INFINITY;
  private lastCollect = Number.NEGATIVE_INFINITY;
  /** RSS right after the last collection; none before the first. */
  private baseline = 0;
  /** Quiet needed before the next check: shorter once, right after start-up. */
  private needQuiet: number;
  private timer: NodeJS.Timeout | undefined;
  /** When {@link timer} fires. */
  private timerAt = 0;
  private running = false;
  private stopped = false;
  /** Collections run (the start-up one included). */
  collections = 0;

  constructor(o: IdleMemoryOptions = {}) {
    this.burstUnits = o.burstUnits ?? 2_000;
    this.quietMs = o.quietMs ?? 5000;
    this.minGapMs = o.minGapMs ?? 60_000;
    this.minGrowth = o.minGrowthBytes ?? 1024 * 1024;
    this.collectNow = o.collect ?? releaseStartupMemory;
    this.hold = o.hold ?? holdOptimizingCompiler;
    this.rss = o.rss ?? (() => process.memoryUsage.rss());
    this.now = o.now ?? (() => performance.now());
    this.needQuiet = this.quietMs;
    this.release = this.hold();
  }

  /** Whether the optimising compiler is held now. */
  get compilerHeld(): boolean {
    return this.release !== undefined;
  }

  /** `units` of work begin now (decisions, lines, bans); called before the work runs. */
  work(units = 1): void {
    if (this.stopped || units <= 0) return;
    const now = this.now();
    this.lastWork = now;
    if (this.release !== undefined) {
      this.busyUnits += units;
      if (this.busyUnits >= this.burstUnits) {
        this.release();
        this.release = undefined;
      }
    }
    this.arm(this.needQuiet);
  }

  /** Start-up is over: the first collection after `settleMs` without further work. */
  startupOver(settleMs: number): void {
    if (this.stopped) return;
    this.needQuiet = settleMs;
    this.lastWork = this.now();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.arm(settleMs);
  }

  /** No more collections; the compiler is let go. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.release?.();
    this.release = undefined;
  }

  /** A check `ms` from now, unless one comes sooner (one waiting out the gap is brought forward). */
  private arm(ms: number): void {
    if (this.stopped) return;
    const at = this.now() + Math.max(0, ms);
    if (this.timer) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => void this.check(), Math.max(0, ms));
    this.timer.unref();
  }

  private async check(): Promise<void> {
    this.timer = undefined;
    if (this.stopped || this.running) return;
    const now = this.now();
    const quietFor = now - this.lastWork;
    if (quietFor < this.needQuiet) return this.arm(this.needQuiet - quietFor);
    this.needQuiet = this.quietMs;
    this.busyUnits = 0;
    this.release ??= this.hold();
    if (now - this.lastCollect < this.minGapMs) return this.arm(this.lastCollect + this.minGapMs - now);
    // Idle, an agent still allocates (file polls, heartbeats, timers: 17-34 KB/s), and V8's new
    // space fills its pages again after each collection: +1-1.7 MB by two minutes (ADR 0061).
    // One look a minute keeps that in check; it collects only when RSS grew minGrowth.
    if (this.collections > 0 && this.rss() - this.baseline < this.minGrowth) return this.arm(this.minGapMs);
    this.running = true;
    try {
      if (await this.collectNow()) this.collections++;
    } finally {
      this.running = false;
    }
    this.lastCollect = this.now();
    this.baseline = this.rss();
    this.arm(this.minGapMs);
  }
}

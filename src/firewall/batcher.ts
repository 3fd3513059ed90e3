import type { Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { Firewall } from './types.js';

export interface BatcherOptions {
  /**
   * How long the first change of a batch waits for company (ms). Default 0: the next event-loop
   * turn, so a lone ban goes at once, and a burst coalesces while each commit runs.
   */
  delayMs?: number;
  /** First retry delay after a failed commit (ms); doubles up to `maxRetryMs`. */
  retryMs?: number;
  maxRetryMs?: number;
  logger?: Logger;
  /** Told about every failed commit (the batch stays staged and is retried). */
  onError?: (err: unknown) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Coalesces changes into few commits: the first change arms a short timer, everything staged
 * until it fires (and while a commit runs) goes into the next transaction, and commits never
 * overlap. A failed batch stays staged in the backend and is retried with backoff; the promise of
 * each change resolves once a commit containing it has applied.
 */
export class Batcher {
  private waiting: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private closed = false;
  private readonly delayMs: number;
  private readonly retryMs: number;
  private readonly maxRetryMs: number;
  private readonly log: Logger;

  constructor(
    private readonly fw: Firewall,
    private readonly opts: BatcherOptions = {},
  ) {
    this.delayMs = opts.delayMs ?? 0;
    this.retryMs = opts.retryMs ?? 500;
    this.maxRetryMs = opts.maxRetryMs ?? 30_000;
    this.log = opts.logger ?? silentLogger();
  }

  /** Commits that ran, and how many of them failed (for metrics and tests). */
  readonly stats = { commits: 0, failed: 0 };

  add(target: Target, timeout: DurationSeconds, set?: string): Promise<void> {
    this.fw.add(target, timeout, set);
    return this.wait();
  }

  delete(target: Target, set?: string): Promise<void> {
    this.fw.delete(target, set);
    return this.wait();
  }

  /** Commits whatever is staged now, without the coalescing delay. */
  async flush(): Promise<void> {
    if (this.fw.pending() === 0 && this.waiting.length === 0) return this.running;
    const done = this.wait(false);
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (!this.running) void this.run();
    return done;
  }

  /** Applies what is staged (one last attempt), then rejects whatever is still waiting. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch(() => {});
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const left = this.waiting;
    this.waiting = [];
    for (const w of left) w.reject(new Error('batcher closed before the change was applied'));
  }

  private wait(schedule = true): Promise<void> {
    if (this.closed) return Promise.reject(new Error('batcher is closed'));
    const p = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    if (schedule) this.schedule(this.delayMs);
    return p;
  }

  private schedule(delay: number): void {
    if (this.timer || this.immediate || this.running || this.closed) return;
    if (delay <= 0) {
      // Next turn of the event loop: everything that arrived in this I/O round rides along.
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        void this.run();
      });
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, delay);
  }

  private async run(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    this.running = (async () => {
      this.stats.commits++;
      try {
        await this.fw.commit();
        this.failures = 0;
        for (const w of batch) w.resolve();
      } catch (err) {
        this.stats.failed++;
        this.failures++;
        this.waiting = batch.concat(this.waiting);
        this.log.warn(
          { err, backend: this.fw.name, pending: this.fw.pending() },
          'firewall commit failed; will retry',
        );
        this.opts.onError?.(err);
      }
    })();
    await this.running;
    this.running = undefined;
    if (this.closed) return;
    if (this.failures > 0) {
      // Timers stay referenced: a staged batch must keep the process alive until it applies.
      const delay = Math.min(this.maxRetryMs, this.retryMs * 2 ** (this.failures - 1));
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.run();
      }, delay);
    } else if (this.waiting.length > 0 || this.fw.pending() > 0) {
      // Changes that arrived during the commit already waited that long: go now.
      this.schedule(0);
    }
  }
}

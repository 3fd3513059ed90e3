/**
 * Per-sender queues served round-robin, one message per sender per round, in slices of event-loop
 * time. One sender flooding cannot delay another by more than one message per round: a message
 * from a quiet sender waits behind at most one message of every other busy sender, however long
 * their queues (ADR 0027). Order within one sender is kept.
 */

export interface FairQueueOptions<T> {
  /** Handles one message. A promise pauses that sender's queue until it settles (order kept). */
  serve: (key: string, item: T) => undefined | Promise<unknown>;
  /** Called for a message refused because its sender's queue (or the whole intake) is full. */
  overflow: (key: string, item: T) => void;
  /** Bytes a message holds while queued. */
  sizeOf: (item: T) => number;
  /** Messages one sender may have waiting. */
  perKeyMessages: number;
  /** Bytes one sender may have waiting. */
  perKeyBytes: number;
  /** Bytes all senders together may have waiting; past it the longest queue loses its newest. */
  totalBytes: number;
  /** Work per event-loop turn before the sockets are read again (ms). */
  sliceMs: number;
  /** Called with an error `serve` threw (the message is lost, the queue goes on). */
  onError?: (key: string, err: unknown) => void;
}

interface Flow<T> {
  items: T[];
  /** Index of the oldest item (shifting a long array is O(n); compacted as it drains). */
  head: number;
  bytes: number;
  /** Serves so far when each item was queued, to measure how long it waited. */
  stamps: number[];
  paused: boolean;
  peak: number;
  maxWaited: number;
  served: number;
}

/** What one sender's queue went through, for tests, benchmarks and `/metrics`. */
export interface FlowStats {
  queued: number;
  /** Longest its queue grew. */
  peak: number;
  served: number;
  /** Most messages (of any sender) served while one of its messages waited. */
  maxWaited: number;
}

export class FairQueue<T> {
  /** Every sender with messages waiting or one in a paused step. */
  private readonly flows = new Map<string, Flow<T>>();
  /** Senders ready to be served, in round-robin order (a Map keeps insertion order). */
  private readonly ring = new Map<string, Flow<T>>();
  private readonly history = new Map<string, FlowStats>();
  private scheduled = false;
  private served = 0;
  private bytes = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: FairQueueOptions<T>) {}

  /** Queues a message from `key`; false when it was refused (full) and `overflow` was called. */
  push(key: string, item: T): boolean {
    const size = this.o.sizeOf(item);
    let flow = this.flows.get(key);
    const length = flow ? flow.items.length - flow.head : 0;
    if (length >= this.o.perKeyMessages || (flow?.bytes ?? 0) + size > this.o.perKeyBytes) {
      this.o.overflow(key, item);
      return false;
    }
    if (this.bytes + size > this.o.totalBytes && !this.evictFromLongest(key, size)) {
      this.o.overflow(key, item);
      return false;
    }
    if (!flow) {
      flow = { items: [], head: 0, bytes: 0, stamps: [], paused: false, peak: 0, maxWaited: 0, served: 0 };
      this.flows.set(key, flow);
    }
    flow.items.push(item);
    flow.stamps.push(this.served);
    flow.bytes += size;
    this.bytes += size;
    flow.peak = Math.max(flow.peak, flow.items.length - flow.head);
    if (!flow.paused && !this.ring.has(key)) this.ring.set(key, flow);
    this.schedule();
    return true;
  }

  /** Messages waiting, all senders. */
  get size(): number {
    let n = 0;
    for (const f of this.flows.values()) n += f.items.length - f.head;
    return n;
  }

  /** Per sender: what is queued now and the peaks since start (senders seen at least once). */
  stats(): Map<string, FlowStats> {
    const out = new Map<string, FlowStats>();
    for (const [key, s] of this.history) out.set(key, { ...s, queued: 0 });
    for (const [key, f] of this.flows) out.set(key, this.statsOf(key, f));
    return out;
  }

  /** Resolves once nothing is queued or paused (messages may still be arriving meanwhile). */
  idle(): Promise<void> {
    if (this.flows.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate, not a microtask: the sockets are read between two slices, so a message that
    // arrives during a flood is queued (and served next round) instead of waiting for the drain.
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.scheduled = false;
    const end = performance.now() + this.o.sliceMs;
    while (this.ring.size > 0) {
      const [key, flow] = this.ring.entries().next().value as [string, Flow<T>];
      this.ring.delete(key);
      const item = flow.items[flow.head]!;
      const waited = this.served - flow.stamps[flow.head]!;
      flow.items[flow.head] = undefined as T;
      flow.head++;
      flow.bytes -= this.o.sizeOf(item);
      this.bytes -= this.o.sizeOf(item);
      if (waited > flow.maxWaited) flow.maxWaited = waited;
      flow.served++;
      this.served++;
      if (flow.head > 1024 && flow.head * 2 > flow.items.length) {
        flow.items = flow.items.slice(flow.head);
        flow.stamps = flow.stamps.slice(flow.head);
        flow.head = 0;
      }
      let step: undefined | Promise<unknown>;
      try {
        step = this.o.serve(key, item);
      } catch (err) {
        this.o.onError?.(key, err);
      }
      if (step) {
        flow.paused = true;
        const resume = () => {
          flow.paused = false;
          this.requeue(key, flow);
          this.schedule();
        };
        step.then(resume, (err: unknown) => {
          this.o.onError?.(key, err);
          resume();
        });
      } else {
        this.requeue(key, flow);
      }
      if (performance.now() >= end) break;
    }
    if (this.ring.size > 0) this.schedule();
  }

  /** Back to the end of the round, or forgotten once empty (the map stays bounded by busy senders). */
  private requeue(key: string, flow: Flow<T>): void {
    if (flow.head < flow.items.length) {
      this.ring.set(key, flow);
      return;
    }
    this.history.set(key, this.statsOf(key, flow));
    // Keep the record small: senders come and go; a forged name flood must not grow it forever.
    if (this.history.size > 10_000) this.history.delete(this.history.keys().next().value as string);
    this.flows.delete(key);
    if (this.flows.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Makes room for `size` bytes from `key` by dropping the newest messages of the longest queue,
   * unless `key`'s own queue is that longest one (then the newcomer is refused instead). The
   * senders with short queues, the ones fair queuing protects, keep theirs.
   */
  private evictFromLongest(key: string, size: number): boolean {
    while (this.bytes + size > this.o.totalBytes) {
      let longest: [string, Flow<T>] | undefined;
      for (const e of this.flows) {
        const len = e[1].items.length - e[1].head;
        if (len > 0 && (!longest || len > longest[1].items.length - longest[1].head)) longest = e;
      }
      const mine = this.flows.get(key);
      if (
        !longest ||
        longest[0] === key ||
        (mine && mine.items.length - mine.head >= longest[1].items.length - longest[1].head)
      )
        return false;
      const [victimKey, victim] = longest;
      const dropped = victim.items.pop()!;
      victim.stamps.pop();
      const bytes = this.o.sizeOf(dropped);
      victim.bytes -= bytes;
      this.bytes -= bytes;
      this.o.overflow(victimKey, dropped);
      if (victim.head >= victim.items.length && !victim.paused) {
        this.ring.delete(victimKey);
        this.requeue(victimKey, victim);
      }
    }
    return true;
  }

  private statsOf(key: string, f: Flow<T>): FlowStats {
    const before = this.history.get(key);
    return {
      queued: f.items.length - f.head,
      peak: Math.max(f.peak, before?.peak ?? 0),
      served: f.served + (before?.served ?? 0),
      maxWaited: Math.max(f.maxWaited, before?.maxWaited ?? 0),
    };
  }
}

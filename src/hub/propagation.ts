import type { Histogram } from 'prom-client';

/** Recent decisions remembered for timing; older ones (a node far behind) are not observed. */
const RING = 1 << 16;
/** Most samples one heartbeat adds: a bulk import of 100,000 is sampled, not observed 100,000 times. */
const MAX_SAMPLES = 1000;

/**
 * Decision created → the node says it applied it. Agents report the last seq they applied in
 * their heartbeat (every `agent.heartbeatInterval`, 10 s by default), so each observation is an
 * upper bound: the true propagation plus up to one heartbeat interval. Kept in memory for the
 * decisions this hub appended; a node's first heartbeat after a hub start only sets its baseline.
 */
export class PropagationTracker {
  private readonly seqs = new Float64Array(RING);
  private readonly created = new Float64Array(RING);
  private readonly applied = new Map<string, number>();

  constructor(private readonly histogram: Histogram) {}

  /** A decision this hub appended. */
  record(seq: number, createdAt: number): void {
    const slot = seq % RING;
    this.seqs[slot] = seq;
    this.created[slot] = createdAt;
  }

  /** A node reports `lastSeq` applied at `now`: observes the decisions it applied since its last report. */
  report(node: string, lastSeq: number, now: number): void {
    const prev = this.applied.get(node);
    this.applied.set(node, lastSeq);
    if (prev === undefined || lastSeq <= prev) return;
    const from = Math.max(prev, lastSeq - RING);
    const step = Math.max(1, Math.ceil((lastSeq - from) / MAX_SAMPLES));
    for (let seq = lastSeq; seq > from; seq -= step) {
      const slot = seq % RING;
      if (this.seqs[slot] === seq) this.histogram.observe(Math.max(0, now - this.created[slot]!) / 1000);
    }
  }

  /** A removed node stops being tracked. */
  forget(node: string): void {
    this.applied.delete(node);
  }
}

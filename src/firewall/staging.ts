import type { Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';

/** The logical set a ban goes to when the caller names none. */
export const DEFAULT_SET = 'blocklist';

export interface StagedOp {
  op: 'add' | 'delete';
  target: Target;
  set: string;
  /** Seconds from `at`; null = permanent. Unused for deletes. */
  timeout: DurationSeconds;
  /** When it was staged (ms), so a ban that waits in the batch keeps its true end time. */
  at: number;
}

/**
 * Changes waiting for the next commit, in arrival order (an append-only log: staging a million
 * bans must cost no more than pushing them). A commit `take()`s the log; on success it `settle()`s,
 * on failure it `restore()`s the batch in front of anything staged meanwhile, so nothing is lost
 * and order is kept. The last change to an element wins (`lastWins`).
 */
export class Staging {
  private log: StagedOp[] = [];
  private inFlight: StagedOp[] | null = null;

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.log.push({ op: 'add', target, set, timeout, at: Date.now() });
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.log.push({ op: 'delete', target, set, timeout: null, at: Date.now() });
  }

  /** Staged changes, including a batch being committed; a repeated change counts each time. */
  get size(): number {
    return this.log.length + (this.inFlight?.length ?? 0);
  }

  /** The oldest `max` changes (all by default) become the batch in flight. */
  take(max = Number.POSITIVE_INFINITY): StagedOp[] {
    let ops = this.log;
    if (ops.length <= max) this.log = [];
    else {
      ops = this.log.slice(0, max);
      this.log = this.log.slice(max);
    }
    this.inFlight = ops;
    return ops;
  }

  settle(): void {
    this.inFlight = null;
  }

  restore(ops: StagedOp[]): void {
    this.log = this.log.length === 0 ? ops : ops.concat(this.log);
    this.inFlight = null;
  }
}

/**
 * One op per element, the last one staged. Only needed when a batch mixes adds and deletes: a
 * batch of adds may repeat an element harmlessly (`add element` tolerates it).
 */
export function lastWins(ops: StagedOp[]): StagedOp[] {
  if (!ops.some((o) => o.op === 'delete')) return ops;
  const last = new Map<string, Map<string, StagedOp>>();
  for (const op of ops) {
    let inSet = last.get(op.set);
    if (!inSet) {
      inSet = new Map();
      last.set(op.set, inSet);
    }
    inSet.delete(op.target.text);
    inSet.set(op.target.text, op);
  }
  const out: StagedOp[] = [];
  for (const inSet of last.values()) for (const op of inSet.values()) out.push(op);
  return out;
}

/** Seconds left of a staged ban at `now`, rounded up; null = permanent; 0 = already over. */
export function remaining(op: Pick<StagedOp, 'timeout' | 'at'>, now: number): DurationSeconds {
  if (op.timeout === null) return null;
  return Math.max(0, Math.ceil(op.timeout - (now - op.at) / 1000));
}

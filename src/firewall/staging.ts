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
 * Changes waiting for the next commit. The last change to an element wins (an add then a delete
 * of the same address is one delete). A commit takes a snapshot and, once applied, removes only
 * the ops that were not replaced meanwhile; on failure everything stays staged for the retry.
 */
export class Staging {
  /** set → target text → op. Nested rather than one joined key: no string building per ban. */
  private readonly ops = new Map<string, Map<string, StagedOp>>();
  private count = 0;
  /** Bumped on every change, so settling a batch nobody touched since is one clear(). */
  private version = 0;
  private snapshotVersion = -1;

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.put({ op: 'add', target, set, timeout, at: Date.now() });
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.put({ op: 'delete', target, set, timeout: null, at: Date.now() });
  }

  private put(op: StagedOp): void {
    this.version++;
    let inSet = this.ops.get(op.set);
    if (!inSet) {
      inSet = new Map();
      this.ops.set(op.set, inSet);
    }
    const before = inSet.size;
    inSet.set(op.target.text, op);
    this.count += inSet.size - before;
  }

  get size(): number {
    return this.count;
  }

  snapshot(): StagedOp[] {
    this.snapshotVersion = this.version;
    const out: StagedOp[] = [];
    for (const inSet of this.ops.values()) for (const op of inSet.values()) out.push(op);
    return out;
  }

  /** Forgets ops that were applied, keeping any that were restaged while the commit ran. */
  settle(applied: StagedOp[]): void {
    if (this.version === this.snapshotVersion && applied.length === this.count) {
      this.ops.clear();
      this.count = 0;
      return;
    }
    for (const op of applied) {
      const inSet = this.ops.get(op.set);
      if (inSet?.get(op.target.text) === op) {
        inSet.delete(op.target.text);
        this.count--;
      }
    }
  }
}

/** Seconds left of a staged ban at `now`, rounded up; null = permanent; 0 = already over. */
export function remaining(op: Pick<StagedOp, 'timeout' | 'at'>, now: number): DurationSeconds {
  if (op.timeout === null) return null;
  return Math.max(0, Math.ceil(op.timeout - (now - op.at) / 1000));
}

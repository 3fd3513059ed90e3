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
  private readonly ops = new Map<string, StagedOp>();

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.ops.set(`${set}\0${target.text}`, { op: 'add', target, set, timeout, at: Date.now() });
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.ops.set(`${set}\0${target.text}`, { op: 'delete', target, set, timeout: null, at: Date.now() });
  }

  get size(): number {
    return this.ops.size;
  }

  snapshot(): StagedOp[] {
    return [...this.ops.values()];
  }

  /** Forgets ops that were applied, keeping any that were restaged while the commit ran. */
  settle(applied: StagedOp[]): void {
    for (const op of applied) {
      const key = `${op.set}\0${op.target.text}`;
      if (this.ops.get(key) === op) this.ops.delete(key);
    }
  }
}

/** Seconds left of a staged ban at `now`, rounded up; null = permanent; 0 = already over. */
export function remaining(op: Pick<StagedOp, 'timeout' | 'at'>, now: number): DurationSeconds {
  if (op.timeout === null) return null;
  return Math.max(0, Math.ceil(op.timeout - (now - op.at) / 1000));
}

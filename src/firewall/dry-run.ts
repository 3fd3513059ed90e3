import type { Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { DEFAULT_SET, remaining, Staging } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry } from './types.js';

export interface DryRunOptions {
  logger?: Logger;
}

/** One commit as the dry-run backend recorded it. */
export interface DryRunCommit {
  at: number;
  added: Array<{ set: string; target: string; timeout: DurationSeconds }>;
  deleted: Array<{ set: string; target: string }>;
}

/**
 * Changes nothing in the kernel: records every batch, logs what a real backend would do, and
 * keeps the resulting state (with expiry) so `list()` and reconcile behave like the real thing.
 */
export class DryRunFirewall implements Firewall {
  readonly name = 'dry-run';
  readonly history: DryRunCommit[] = [];
  private readonly staging = new Staging();
  private readonly state = new Map<string, { target: Target; set: string; expiresAt: number | null }>();
  private readonly log: Logger;

  constructor(opts: DryRunOptions = {}) {
    this.log = opts.logger ?? silentLogger();
  }

  async init(): Promise<void> {}

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.staging.add(target, timeout, set);
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.staging.delete(target, set);
  }

  pending(): number {
    return this.staging.size;
  }

  async commit(): Promise<CommitResult> {
    if (this.staging.size === 0) return { added: 0, deleted: 0 };
    const ops = this.staging.take();
    const now = Date.now();
    const rec: DryRunCommit = { at: now, added: [], deleted: [] };
    for (const op of ops) {
      const key = `${op.set}\0${op.target.text}`;
      const left = op.op === 'add' ? remaining(op, now) : 0;
      if (op.op === 'add' && left !== 0) {
        this.state.set(key, {
          target: op.target,
          set: op.set,
          expiresAt: left === null ? null : now + left * 1000,
        });
        rec.added.push({ set: op.set, target: op.target.text, timeout: left });
      } else {
        this.state.delete(key);
        if (op.op === 'delete') rec.deleted.push({ set: op.set, target: op.target.text });
      }
    }
    this.history.push(rec);
    this.log.info(
      {
        added: rec.added.length,
        deleted: rec.deleted.length,
        sample: rec.added.slice(0, 5).map((a) => a.target),
      },
      'dry-run firewall: would apply batch',
    );
    this.staging.settle();
    return { added: rec.added.length, deleted: rec.deleted.length };
  }

  async list(set?: string): Promise<FirewallEntry[]> {
    const now = Date.now();
    const out: FirewallEntry[] = [];
    for (const [key, e] of this.state) {
      if (e.expiresAt !== null && e.expiresAt <= now) {
        this.state.delete(key);
        continue;
      }
      if (set !== undefined && e.set !== set) continue;
      out.push({
        target: e.target,
        set: e.set,
        timeout: e.expiresAt === null ? null : Math.ceil((e.expiresAt - now) / 1000),
      });
    }
    return out;
  }

  async flush(set?: string): Promise<void> {
    for (const [key, e] of this.state) if (set === undefined || e.set === set) this.state.delete(key);
  }

  async shutdown(): Promise<void> {}
}

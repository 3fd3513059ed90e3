import type { Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';

/** An element as the kernel (or the backend's own record) holds it. */
export interface FirewallEntry {
  target: Target;
  /** Logical set name. */
  set: string;
  /** Seconds left; null = no timeout (permanent). */
  timeout: DurationSeconds;
}

export interface CommitResult {
  added: number;
  deleted: number;
}

/**
 * The whole firewall boundary. `add`/`delete` only stage; `commit` applies everything staged in
 * one batch (one `nft -f -` transaction, one `ipset restore`), and on failure keeps the batch
 * staged so the next commit retries it. `list` reads back what the kernel holds (slow on big
 * nftables sets: never on a hot path). `init`/`shutdown` are idempotent.
 */
export interface Firewall {
  readonly name: string;
  init(): Promise<void>;
  add(target: Target, timeout: DurationSeconds, set?: string): void;
  delete(target: Target, set?: string): void;
  /** How many changes are staged and not yet committed. */
  pending(): number;
  commit(): Promise<CommitResult>;
  list(set?: string): Promise<FirewallEntry[]>;
  shutdown(): Promise<void>;
  /** Optional: empties the backend's sets (all, or one logical set); tables and rules stay. */
  flush?(set?: string): Promise<void>;
  /**
   * Optional: replaces everything the backend holds with `desired` in one atomic step, for sets
   * too large to read back (see `reconcile.ts`). Returns how many elements it loaded.
   */
  rebuild?(desired: FirewallEntry[]): Promise<number>;
}

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
  /**
   * Changes the kernel refused (a set that does not exist, an element it will not take): set
   * aside, logged and counted, so they never hold the rest of the batch hostage.
   */
  refused?: Refusal[];
}

/** One staged change the kernel would not take, and why. */
export interface Refusal {
  op: 'add' | 'delete';
  target: Target;
  /** Logical set. */
  set: string;
  reason: string;
}

/**
 * The whole firewall boundary. `add`/`delete` only stage; `commit` applies everything staged in
 * one batch (one `nft -f -` transaction, one `ipset restore`). An element the kernel refuses is
 * set aside and reported in the result; any other failure keeps the batch staged so the next
 * commit retries it. `list` reads back what the kernel holds (slow on big
 * nftables sets: never on a hot path). `init`/`shutdown` are idempotent.
 */
export interface Firewall {
  readonly name: string;
  /** How it reaches the kernel once initialised: in-process `library` or `spawn`ed programs. */
  readonly driver?: 'library' | 'spawn';
  /** Changes refused and set aside since start (see {@link CommitResult.refused}). */
  readonly refusedTotal?: number;
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
   * too large to read back (see `reconcile.ts`). Returns how many elements it loaded. `desired`
   * is read once, before the first await (it may be a live cursor over the agent's state).
   */
  rebuild?(desired: Iterable<FirewallEntry>): Promise<number>;
  /**
   * Optional, with `repair`: reads what the kernel holds, cheaply when nothing changed since the
   * last repair (then `quiet`). Runs without the commit lock (it may take long); undefined when
   * this backend cannot read its sets this way (then a big reconcile rebuilds). `full: false`
   * never reads a big set whole (a start must not wait for it). `fresh` reads even when nothing
   * changed: the caller knows the kernel may hold what it no longer wants (bans that expired by
   * the wall clock, which the kernel's monotonic timeouts do not follow across a clock step).
   */
  scan?(opts?: { full?: boolean; fresh?: boolean }): Promise<KernelScan | undefined>;
  /**
   * Optional: makes the kernel hold `desired` by changing only what differs from `scan`, in
   * bounded transactions: missing elements added, strays deleted, wrong time left renewed. A set
   * the scan could not read is given every desired element (its strays wait for a read).
   * `desired` comes in pages; the backend may await between pages, never inside one.
   */
  repair?(desired: AsyncIterable<readonly FirewallEntry[]>, scan: KernelScan): Promise<RepairCounts>;
}

/** What a backend's `scan` learned; only the backend that made it reads more than `quiet`. */
export interface KernelScan {
  /** Nothing changed in the kernel since it last held exactly what was wanted. */
  readonly quiet: boolean;
}

export interface RepairCounts {
  added: number;
  deleted: number;
  /** Present with a time left too far from the ban's: replaced. */
  renewed: number;
  /** Added again without knowing whether missing: the set could not be read this time. */
  refilled?: number;
}

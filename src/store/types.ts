import type { Target } from '../core/address.js';
import type { Decision } from '../core/decision.js';

/** A decision before the log gives it an `id` (optional) and its `seq`. */
export type DecisionInput = Omit<Decision, 'seq' | 'id'> & { id?: string };

/** An enrolled (or invited) node. Times are epoch milliseconds. */
export interface NodeRecord {
  name: string;
  /** Ed25519 public key (as the trust module encodes it), null until the node has joined. */
  publicKey: string | null;
  /** SHA-256 hex of the node's bearer token, null until joined. */
  tokenHash: string | null;
  /** SHA-256 hex of the one-time join secret, null once used. */
  joinSecretHash: string | null;
  createdAt: number;
  removedAt: number | null;
  lastSeq: number;
  lastSeen: number | null;
  version: string | null;
  /**
   * The envelope kinds the node said it reads in its last heartbeat, comma-separated ('' for none
   * beyond the plain ones); null before its first heartbeat through a hub that records it.
   */
  reads: string | null;
}

export interface AllowEntry {
  /** Canonical CIDR or address text. */
  cidr: string;
  comment: string;
  createdAt: number;
}

/** How often an address was banned before, fleet-wide; drives escalation. */
export interface BanHistory {
  count: number;
  lastAt: number | null;
}

/** How many bans are in force, kept by the store so counting never reads the bans. */
export interface ActiveCounts {
  total: number;
  byFamily: { 4: number; 6: number };
  /** Node name, `operator`, `api`, `import`...; origins with no ban in force are left out. */
  byOrigin: Record<string, number>;
  byRule: Record<string, number>;
}

/** One page request over the bans in force; every filter is optional and they combine (AND). */
export interface ActiveQuery {
  /** Most items in the page (1 to 10,000). */
  limit: number;
  /** The `next` of the previous page. */
  cursor?: string;
  /** Bans overlapping this address or range: a range that contains it, or bans inside it. */
  target?: Target;
  origin?: string;
  rule?: string;
  set?: string;
  /** Bans decided at or after this time (epoch ms). */
  since?: number;
}

/**
 * One page of the bans in force in (target, set) order, for exports that stream the whole set
 * (the edge-router blocklist): the key order lets a caller page without offsets and drop a target
 * banned in several sets by comparing with the previous row.
 */
export interface ActiveOrderedQuery {
  /** Most items (1 to 10,000). */
  limit: number;
  /** The (target, set) of the last item of the previous page. */
  after?: { target: string; set: string };
  family?: 4 | 6;
  set?: string;
}

/** Newest first (by decision time, then seq); `next` is null on the last page. */
export interface ActivePage {
  items: Decision[];
  next: string | null;
  /** Bans matching the filters (all pages). */
  total: number;
}

/** A CrowdSec bouncer's read-only key (only its hash is kept) and where its stream stands. */
export interface BouncerRecord {
  name: string;
  keyHash: string;
  createdAt: number;
  /** Last stream pull (epoch ms), null before the first. */
  lastPull: number | null;
  /** Log seq the bouncer's stream has delivered up to. */
  lastSeq: number;
}

/** What `Store.lookUp` reads besides the bans in force. */
export interface LookUpOptions {
  /**
   * The targets' ban counts (default true). A bulk import never asks for them: on PostgreSQL
   * their probe was a third of the read's cost per item, on every slice.
   */
  history?: boolean;
}

/**
 * The hub's durable state. Every implementation (SQLite now, PostgreSQL later) must pass
 * test/store/contract.ts. Methods are async so a networked database fits the same shape.
 */
export interface Store {
  /**
   * Appends decisions to the log in one transaction, each with the next `seq` (no gaps, even
   * with several writers). Bans enter the active set, unbans leave it. `offences` are counted in
   * the ban history in the same transaction (escalation never double-counts after a crash).
   */
  append(inputs: DecisionInput[], offences?: Array<{ target: string; at: number }>): Promise<Decision[]>;
  /** Decisions with seq > `seq`, ascending, at most `limit`. */
  since(seq: number, limit: number): Promise<Decision[]>;
  /** Bans in force at `now` (epoch ms): the latest ban per (target, set) not yet expired. */
  active(now: number): Promise<Decision[]>;
  /** Bans in force at `now`, counted in O(1) of the number of bans (not loading them). */
  countActive(now: number): Promise<ActiveCounts>;
  /** One page of the bans in force at `now`, filtered, through indexes (never a full scan). */
  activePage(query: ActiveQuery, now: number): Promise<ActivePage>;
  /** Bans in force at `now` ordered by (target, set), after `query.after`, through the primary key. */
  activeOrdered(query: ActiveOrderedQuery, now: number): Promise<Decision[]>;
  /**
   * Bans decided per time bucket: `buckets` counts, the first for [from, from + bucketMs), read
   * through the log's time index (bounded by the window, not by the number of bans in force).
   */
  banCounts(from: number, bucketMs: number, buckets: number): Promise<number[]>;
  /** The ban in force for one target and set, if any. */
  activeFor(target: string, set: string, now: number): Promise<Decision | undefined>;
  /**
   * Optional: `activeFor` and `banHistory().count` for a whole batch in one read, for stores where
   * each call is a network round trip (PostgreSQL). `active` is aligned with `pairs`; `history`
   * holds the targets that have any, and is left empty when `opts.history` is false. Callers go
   * through `store/batch-view.ts`.
   */
  lookUp?(
    pairs: ReadonlyArray<{ target: string; set: string }>,
    now: number,
    opts?: LookUpOptions,
  ): Promise<{ active: Array<Decision | undefined>; history: Map<string, number> }>;
  /** The highest seq ever given (0 for an empty log); never goes down, even after pruning. */
  head(): Promise<number>;
  /**
   * One above the highest seq removed by retention (1 if nothing was pruned). A cursor below
   * `oldestRetained() - 1` has missed entries and must be answered with a snapshot.
   */
  oldestRetained(): Promise<number>;
  /** Removes log entries created before `before` (epoch ms) and expired active bans; returns rows removed from the log. */
  prune(before: number, now: number): Promise<number>;

  addNode(name: string, joinSecretHash: string, now: number): Promise<NodeRecord>;
  getNode(name: string): Promise<NodeRecord | undefined>;
  nodeByTokenHash(tokenHash: string): Promise<NodeRecord | undefined>;
  listNodes(): Promise<NodeRecord[]>;
  /** Completes a join: stores the key and token hash and burns the join secret. False if not pending. */
  enrolNode(name: string, joinSecretHash: string, publicKey: string, tokenHash: string): Promise<boolean>;
  /** Marks a node removed (its key and token stop working); false when unknown or already removed. */
  removeNode(name: string, now: number): Promise<boolean>;
  touchNode(
    name: string,
    seen: { lastSeq?: number; lastSeen: number; version?: string; reads?: string },
  ): Promise<void>;

  allowAdd(entry: AllowEntry): Promise<void>;
  allowRemove(cidr: string): Promise<boolean>;
  allowList(): Promise<AllowEntry[]>;

  recordBan(target: string, at: number): Promise<void>;
  banHistory(target: string): Promise<BanHistory>;

  /** Adds a bouncer; E_USAGE when the name is taken. */
  addBouncer(name: string, keyHash: string, now: number): Promise<BouncerRecord>;
  bouncerByKeyHash(keyHash: string): Promise<BouncerRecord | undefined>;
  listBouncers(): Promise<BouncerRecord[]>;
  removeBouncer(name: string): Promise<boolean>;
  /** Records a stream pull that delivered the log up to `lastSeq`. */
  touchBouncer(name: string, lastSeq: number, now: number): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  close(): Promise<void>;
}

import type { FleetThreshold } from '../detect/rule.js';

/** A fleet-wide threshold at the hub, with what the ban it triggers looks like. */
export interface FleetRule extends FleetThreshold {
  /** Ban length in seconds (null = permanent); undefined = the policy's default bantime. */
  bantime?: number | null;
  /** Logical set the ban goes to; default `blocklist`. */
  set?: string;
}

export interface FleetCounterOptions {
  /** Thresholds by rule name; hits for other rules are not counted. */
  rules: ReadonlyMap<string, FleetRule>;
  /** Hits one node can contribute for one address within the window (N). */
  perNode: number;
  /** Distinct nodes that must have seen the address before it is banned (K). */
  minNodes: number;
  /** Cap on tracked (rule, address) pairs; beyond it the least-hit of the oldest are evicted. */
  maxEntries: number;
  /** Called with the number of entries dropped because the table was full. */
  onEvict?: (n: number) => void;
}

/** The verdict when an address crossed its rule's fleet threshold. */
export interface FleetCrossing {
  rule: string;
  target: string;
  /** Hits counted in the window (after the per-node cap). */
  hits: number;
  /** Distinct nodes they came from. */
  nodes: number;
  threshold: FleetRule;
}

interface Entry {
  key: string;
  /** Neighbours in least-recently-hit order (`older` toward the head, the next to evict). */
  older: Entry | null;
  newer: Entry | null;
  /** Who contributed each counted hit and when (hub time, ms), oldest first; at most perNode per node. */
  nodes: string[];
  at: number[];
  /** Newest hit (ms): an entry quiet for a whole window holds nothing. */
  last: number;
  findtimeMs: number;
}

/** Oldest entries looked at when one must go: the one with the fewest hits among them leaves. */
const EVICTION_SAMPLE = 8;

/**
 * Sums the below-threshold failures agents report, per (rule, address), over a sliding window in
 * hub time. Each node counts for at most `perNode` hits of an address per window (its newest
 * ones), and an address crosses only when `minNodes` distinct nodes saw it: a compromised node
 * cannot get an address banned by inventing hits. Memory is bounded whatever the number of
 * addresses: a Map capped at `maxEntries`, its entries linked in least-recently-hit order. (The
 * Map's own insertion order would do, but iterating it from the start walks over every deleted
 * slot not yet compacted: under a flood, each eviction cost a scan of tens of thousands.)
 */
export class FleetCounter {
  private readonly table = new Map<string, Entry>();
  /** Least recently hit; `newest` is the other end. */
  private oldest: Entry | null = null;
  private newest: Entry | null = null;
  evictions = 0;

  constructor(private readonly o: FleetCounterOptions) {}

  get size(): number {
    return this.table.size;
  }

  /** True when hits for this rule are counted. */
  counts(rule: string): boolean {
    return this.o.rules.has(rule);
  }

  /**
   * Adds `hits` failures of `target` seen by `node` under `rule` at `now`. Returns the crossing
   * when the address reached the threshold (its entry is then cleared), else null.
   */
  add(node: string, rule: string, target: string, hits: number, now: number): FleetCrossing | null {
    const threshold = this.o.rules.get(rule);
    if (threshold === undefined || hits < 1) return null;
    const key = `${rule}|${target}`;
    let e = this.table.get(key);
    if (e === undefined) {
      if (this.table.size >= this.o.maxEntries) this.evict(now);
      e = {
        key,
        older: null,
        newer: null,
        nodes: [],
        at: [],
        last: now,
        findtimeMs: threshold.findtime * 1000,
      };
      this.table.set(key, e);
    } else {
      this.unlink(e);
    }
    this.link(e);
    expire(e, now);
    const cap = this.o.perNode;
    let mine = 0;
    for (const n of e.nodes) if (n === node) mine++;
    // Keep the node's newest `cap` hits: drop its oldest ones to make room for the new.
    const fresh = Math.min(hits, cap);
    for (let drop = mine + fresh - cap; drop > 0; drop--) {
      const i = e.nodes.indexOf(node);
      e.nodes.splice(i, 1);
      e.at.splice(i, 1);
    }
    for (let i = 0; i < fresh; i++) {
      e.nodes.push(node);
      e.at.push(now);
    }
    e.last = now;
    const total = e.at.length;
    if (total < threshold.maxretry) return null;
    const distinct = new Set(e.nodes).size;
    if (distinct < this.o.minNodes) return null;
    this.remove(e);
    return { rule, target, hits: total, nodes: distinct, threshold };
  }

  /** Drops entries whose every hit is older than their window; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const e of this.table.values()) {
      if (e.last <= now - e.findtimeMs) {
        this.remove(e);
        n++;
      }
    }
    return n;
  }

  /** Hits currently counted for (rule, target) within the window, for tests and `status`. */
  peek(rule: string, target: string, now: number): { hits: number; nodes: number } {
    const e = this.table.get(`${rule}|${target}`);
    if (e === undefined) return { hits: 0, nodes: 0 };
    expire(e, now);
    return { hits: e.at.length, nodes: new Set(e.nodes).size };
  }

  /**
   * Makes room for one entry. Among the least recently hit few, an expired entry goes first, else
   * the one with the fewest hits: an address many nodes are seeing survives a flood of new ones.
   */
  private evict(now: number): void {
    let victim: Entry | null = null;
    let fewest = Number.POSITIVE_INFINITY;
    let seen = 0;
    for (let e = this.oldest; e !== null && seen < EVICTION_SAMPLE; e = e.newer, seen++) {
      if (e.last <= now - e.findtimeMs) {
        victim = e;
        break;
      }
      if (e.at.length < fewest) {
        fewest = e.at.length;
        victim = e;
      }
    }
    if (victim === null) return;
    this.remove(victim);
    this.evictions++;
    this.o.onEvict?.(1);
  }

  private remove(e: Entry): void {
    this.table.delete(e.key);
    this.unlink(e);
  }

  /** Appends `e` at the newest end. */
  private link(e: Entry): void {
    e.older = this.newest;
    e.newer = null;
    if (this.newest !== null) this.newest.newer = e;
    else this.oldest = e;
    this.newest = e;
  }

  private unlink(e: Entry): void {
    if (e.older !== null) e.older.newer = e.newer;
    else if (this.oldest === e) this.oldest = e.newer;
    if (e.newer !== null) e.newer.older = e.older;
    else if (this.newest === e) this.newest = e.older;
    e.older = e.newer = null;
  }
}

function expire(e: Entry, now: number): void {
  const horizon = now - e.findtimeMs;
  let k = 0;
  while (k < e.at.length && e.at[k]! <= horizon) k++;
  if (k > 0) {
    e.at.splice(0, k);
    e.nodes.splice(0, k);
  }
}

import type { Firewall, FirewallEntry, KernelScan, RepairCounts } from './types.js';

export interface SyncOptions {
  /**
   * `diff` lists the backend and stages only the differences; `repair` compares the kernel's
   * sets with the desired state in a compact form and changes only what differs, in bounded
   * transactions (ADR 0043); `rebuild` replaces the content in one atomic step without reading
   * it back; `auto` (default), above `rebuildAbove` elements, repairs when the backend can and
   * rebuilds otherwise.
   */
  strategy?: 'auto' | 'diff' | 'repair' | 'rebuild';
  rebuildAbove?: number;
  /** A `scan` the caller made already (outside its commit lock). */
  scan?: KernelScan;
  /** Repair: never read a big set whole (a start must not wait); such a set is refilled. */
  refill?: boolean;
  /** `auto` may repair (default true); false keeps the one-transaction rebuild for big sets. */
  repairAuto?: boolean;
}

export interface SyncReport {
  strategy: 'diff' | 'repair' | 'rebuild';
  /** Elements that were missing and were put back (diff only). */
  added: FirewallEntry[];
  /** Elements that should not have been there and were removed (diff only). */
  deleted: FirewallEntry[];
  /** Elements loaded by a rebuild. */
  loaded: number;
  /** How many elements were added, deleted, and renewed (repair: a wrong time left replaced). */
  counts: RepairCounts;
}

/** Desired elements a repair reads per page (it may await between pages). */
export const PAGE = 5_000;

/** Default threshold: listing ~10,000 nft elements takes well under a second. */
export const REBUILD_ABOVE = 10_000;

const key = (e: FirewallEntry) => `${e.set}\0${e.target.text}`;

/**
 * Desired content too big to hold as objects (an agent's million bans): how many there are, and
 * a fresh pass over them each time `entries()` is called. A rebuild reads it once, as a stream.
 */
export interface DesiredStream {
  count: number;
  entries(): Iterable<FirewallEntry>;
  /**
   * The same in pages of at most `size`, each read whole before it is handed out, so the reader
   * may await between pages (a cursor must not stay open across an await).
   */
  pages?(size: number): AsyncIterable<FirewallEntry[]>;
}

/**
 * Makes the backend hold exactly `desired` (the active decisions), repairing drift such as an
 * operator's `nft flush set` or a reload that dropped the table, and says what it changed.
 * Remaining times are not compared: an element present with another timeout is left alone.
 */
export async function sync(
  fw: Firewall,
  wanted: FirewallEntry[] | DesiredStream,
  opts: SyncOptions = {},
): Promise<SyncReport> {
  const strategy = opts.strategy ?? 'auto';
  const count = Array.isArray(wanted) ? wanted.length : wanted.count;
  const big = count > (opts.rebuildAbove ?? REBUILD_ABOVE);
  const autoRepair = strategy === 'auto' && big && opts.repairAuto !== false;
  if (fw.repair && fw.scan && (strategy === 'repair' || autoRepair)) {
    const scan = opts.scan ?? (await fw.scan({ full: !opts.refill }));
    if (scan) {
      const counts = await fw.repair(pagesOf(wanted), scan);
      return { strategy: 'repair', added: [], deleted: [], loaded: 0, counts };
    }
  }
  if (fw.rebuild && (strategy === 'rebuild' || (strategy === 'auto' && big) || strategy === 'repair')) {
    const loaded = await fw.rebuild(Array.isArray(wanted) ? wanted : wanted.entries());
    return {
      strategy: 'rebuild',
      added: [],
      deleted: [],
      loaded,
      counts: { added: 0, deleted: 0, renewed: 0 },
    };
  }
  // Small enough to diff (or a backend that can only diff): held as objects.
  const desired = Array.isArray(wanted) ? wanted : [...wanted.entries()];
  const current = new Map((await fw.list()).map((e) => [key(e), e]));
  const want = new Map(desired.map((e) => [key(e), e]));
  const added: FirewallEntry[] = [];
  const deleted: FirewallEntry[] = [];
  for (const [k, e] of want) {
    if (current.has(k) || (e.timeout !== null && e.timeout <= 0)) continue;
    fw.add(e.target, e.timeout, e.set);
    added.push(e);
  }
  for (const [k, e] of current) {
    if (want.has(k)) continue;
    fw.delete(e.target, e.set);
    deleted.push(e);
  }
  if (fw.pending() > 0) await fw.commit();
  return {
    strategy: 'diff',
    added,
    deleted,
    loaded: 0,
    counts: { added: added.length, deleted: deleted.length, renewed: 0 },
  };
}

/** The desired state in pages: slices of an array, a stream's own pages, or one page. */
async function* pagesOf(wanted: FirewallEntry[] | DesiredStream): AsyncGenerator<FirewallEntry[]> {
  if (Array.isArray(wanted)) {
    for (let i = 0; i < wanted.length; i += PAGE) yield wanted.slice(i, i + PAGE);
  } else if (wanted.pages) yield* wanted.pages(PAGE);
  else yield [...wanted.entries()];
}

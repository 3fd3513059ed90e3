import type { Firewall, FirewallEntry } from './types.js';

export interface SyncOptions {
  /**
   * `diff` lists the backend and stages only the differences; `rebuild` replaces the content in
   * one atomic step without reading it back; `auto` (default) rebuilds when the backend can and
   * the desired state is larger than `rebuildAbove` elements.
   */
  strategy?: 'auto' | 'diff' | 'rebuild';
  rebuildAbove?: number;
}

export interface SyncReport {
  strategy: 'diff' | 'rebuild';
  /** Elements that were missing and were put back (diff only). */
  added: FirewallEntry[];
  /** Elements that should not have been there and were removed (diff only). */
  deleted: FirewallEntry[];
  /** Elements loaded by a rebuild. */
  loaded: number;
}

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
  if (fw.rebuild && (strategy === 'rebuild' || (strategy === 'auto' && big))) {
    const loaded = await fw.rebuild(Array.isArray(wanted) ? wanted : wanted.entries());
    return { strategy: 'rebuild', added: [], deleted: [], loaded };
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
  return { strategy: 'diff', added, deleted, loaded: 0 };
}

import type { Decision } from '../core/decision.js';
import { PairMap } from './pair-map.js';
import type { LookUpOptions, Store } from './types.js';

/** What a batch of decisions reads from the store: the ban in force per (target, set), and how often a target was banned. */
export interface BatchView {
  activeFor(target: string, set: string): Promise<Decision | undefined>;
  /**
   * `activeFor` without waiting, for a pair read up front: the ban in force, or null when there
   * is none; undefined when the pair was not read (then ask `activeFor`). A bulk import of 10,000
   * then costs no await per item (ADR 0057).
   */
  known(target: string, set: string): Decision | null | undefined;
  banCount(target: string): Promise<number>;
}

/**
 * Reads the batch's `pairs` at once when the store can (`Store.lookUp`: one round trip instead of
 * two per item on PostgreSQL); anything not asked up front, or a store without `lookUp`, is read
 * item by item as before. A hint, not a contract: a pair left out only costs its own read.
 */
export async function batchView(
  store: Store,
  pairs: ReadonlyArray<{ target: string; set: string }>,
  now: number,
  opts: LookUpOptions = {},
): Promise<BatchView> {
  const active = new PairMap<Decision | undefined>();
  let history = new Map<string, number>();
  const asked = new Set<string>();
  const withHistory = opts.history !== false;
  if (store.lookUp && pairs.length > 0) {
    const got = await store.lookUp(pairs, now, opts);
    pairs.forEach((p, i) => {
      active.set(p.target, p.set, got.active[i]);
      // Counts not read up front are read one by one if asked for after all.
      if (withHistory) asked.add(p.target);
    });
    history = got.history;
  }
  return {
    activeFor: async (target, set) =>
      active.has(target, set) ? active.get(target, set) : store.activeFor(target, set, now),
    known: (target, set) => (active.has(target, set) ? (active.get(target, set) ?? null) : undefined),
    banCount: async (target) =>
      asked.has(target) ? (history.get(target) ?? 0) : (await store.banHistory(target)).count,
  };
}

export interface CostBoundedOptions {
  /**
   * The most of its time the process spends computing the value: after a computation that took
   * C ms, the value is served as it is for C / share ms. Default 0.01 (1 %).
   */
  share?: number;
  /** A monotonic clock in ms (real time: it measures what a computation costs). */
  now?: () => number;
}

/**
 * A value that costs in proportion to something large (a count over the agent's whole state: 5 ms
 * at 20,000 bans, 450-700 ms at 1,000,000, all of it on the event loop), read by callers that do not
 * decide its rate (metrics scrapes, heartbeats, a benchmark polling every 50 ms). It is recomputed
 * only once the time since the last computation is 1/share of what that computation took, so
 * reading it takes at most `share` of the process's time however often it is read. A small value
 * is as good as fresh (0.05 ms: served for 5 ms); set sizes of a million bans (≈ 500 ms) are up to
 * a minute old.
 */
export function costBounded<T>(compute: () => T, o: CostBoundedOptions = {}): () => T {
  const share = o.share ?? 0.01;
  const now = o.now ?? (() => performance.now());
  let value: T | undefined;
  // Before the first computation nothing is served.
  let until = Number.NEGATIVE_INFINITY;
  return () => {
    const start = now();
    if (start < until) return value as T;
    value = compute();
    const end = now();
    until = end + (end - start) / share;
    return value;
  };
}

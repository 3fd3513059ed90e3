import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTarget } from '../src/core/address.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { ActiveQuery, DecisionInput } from '../src/store/types.js';
import type { Emit } from './list.js';

const GOAL_MS = 100;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

export function input(i: number, now: number): DecisionInput {
  // Every 1000th ban is a /24 so containment has ranges to find.
  const range = i % 1000 === 0;
  const target = range
    ? `11.${(i >> 16) & 255}.${(i >> 8) & 255}.0/24`
    : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    action: 'ban',
    target,
    family: 4,
    duration: 86400,
    expiresAt: now + 86_400_000,
    reason: 'bench',
    rule: i % 10 === 0 ? 'nginx' : 'sshd',
    origin: `web${i % 20}`,
    createdAt: now - 1_000_000 + i,
    set: 'blocklist',
  };
}

/**
 * The operator views at 1,000,000 bans in force (issue 12): status counts and each `list`
 * filter, against the goal of 100 ms each, side by side with what `status` did before (load
 * every active ban to count them).
 */
export default async function activeViewsBench(emit: Emit): Promise<void> {
  const N = Number(process.env.RAMPART_BENCH_BANS ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-views-'));
  try {
    const store = new SqliteStore(join(dir, 'log.db'));
    const now = Date.now();
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i += 10_000) {
      await store.append(Array.from({ length: Math.min(10_000, N - i) }, (_, j) => input(i + j, now)));
    }
    emit({ bench: 'active-views-load', bans: N, seconds: +(ms(t0) / 1000).toFixed(1) });

    const time = async (name: string, fn: () => Promise<unknown>) => {
      await fn(); // warm the statement cache and the page cache
      const runs: number[] = [];
      for (let r = 0; r < 5; r++) {
        t0 = process.hrtime.bigint();
        await fn();
        runs.push(ms(t0));
      }
      runs.sort((a, b) => a - b);
      const median = runs[2]!;
      emit({
        bench: `active-views-${name}`,
        bans: N,
        medianMs: +median.toFixed(2),
        goalMs: GOAL_MS,
        withinGoal: median < GOAL_MS,
      });
      return median;
    };
    const counts = await time('count', () => store.countActive(now));
    const page = (q: Omit<ActiveQuery, 'limit'>) => store.activePage({ limit: 100, ...q }, now);
    await time('list-first-page', () => page({}));
    const deep = (await page({})).next!;
    await time('list-next-page', () => page({ cursor: deep }));
    await time('list-origin', () => page({ origin: 'web7' }));
    await time('list-rule', () => page({ rule: 'nginx' }));
    await time('list-origin-rule', () => page({ origin: 'web0', rule: 'nginx' }));
    await time('list-since-10min', () => page({ since: now - 600_000 }));
    await time('list-target-inside-range', () => page({ target: parseTarget('11.0.3.77') }));
    await time('list-target-range', () => page({ target: parseTarget('10.1.0.0/16') }));

    // What status did before: load every ban in force to count them.
    t0 = process.hrtime.bigint();
    const all = (await store.active(now)).length;
    const loadAll = ms(t0);
    emit({
      bench: 'active-views-count-vs-load-all',
      bans: all,
      countMs: +counts.toFixed(2),
      loadAllMs: Math.round(loadAll),
      speedup: Math.round(loadAll / Math.max(counts, 0.001)),
    });
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

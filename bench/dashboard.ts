import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../src/hub/hub.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { DecisionInput } from '../src/store/types.js';
import { input as listInput } from './active-views.js';
import type { Emit } from './list.js';

const GOAL_MS = 100;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** The list bench's bans, spread evenly over the last three hours: all of them in the default chart. */
function input(i: number, n: number, now: number): DecisionInput {
  const at = now - 3 * 3_600_000 + Math.floor((i * 3 * 3_600_000) / n);
  return { ...listInput(i, now), createdAt: at, expiresAt: at + 86_400_000 };
}

/**
 * What one dashboard refresh costs the hub over HTTP with 100,000 bans in force, all decided
 * within the chart's window (the timeline's worst case): each call the page makes, against the
 * goal of 100 ms, and the whole refresh side by side with sending every ban
 * (`GET /v1/decisions/active`, what a page without server-side paging would need).
 */
export default async function dashboardBench(emit: Emit): Promise<void> {
  const N = Number(process.env.RAMPART_BENCH_BANS ?? 100_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-bench-dash-'));
  try {
    mkdirSync(join(dataDir, 'hub'), { mode: 0o700 });
    const store = new SqliteStore(join(dataDir, 'hub', 'hub.db'));
    const now = Date.now();
    for (let i = 0; i < N; i += 10_000) {
      await store.append(Array.from({ length: Math.min(10_000, N - i) }, (_, j) => input(i + j, N, now)));
    }
    await store.close();
    const hub = await startHub({ dataDir, apiPort: 0, brokerPort: 0, protectInterfaces: false });
    try {
      const get = async (path: string) => {
        const res = await fetch(new URL(path, hub.url), {
          headers: { authorization: `Bearer ${hub.adminToken}` },
        });
        const body = await res.arrayBuffer();
        if (!res.ok) throw new Error(`${path}: ${res.status}`);
        return body.byteLength;
      };
      /** `goal` false: the side-by-side figure, not one the page ever makes. */
      const time = async (name: string, path: string, goal = true) => {
        await get(path);
        const runs: number[] = [];
        let bytes = 0;
        for (let r = 0; r < 5; r++) {
          const t0 = process.hrtime.bigint();
          bytes = await get(path);
          runs.push(ms(t0));
        }
        runs.sort((a, b) => a - b);
        const median = runs[2]!;
        emit({
          bench: `dashboard-${name}`,
          bans: N,
          medianMs: +median.toFixed(2),
          bytes,
          ...(goal ? { goalMs: GOAL_MS, withinGoal: median < GOAL_MS } : {}),
        });
        return { median, bytes };
      };
      const calls = [
        await time('bans-page', '/v1/bans?limit=25'),
        await time('status', '/v1/status'),
        await time('nodes', '/v1/nodes'),
        await time('allowlist', '/v1/allowlist'),
        await time('timeline-3h', '/v1/timeline?minutes=180'),
      ];
      await time('timeline-24h', '/v1/timeline?minutes=1440');
      await time('search-range', '/v1/bans?limit=25&target=10.1.0.0%2F16');
      const all = await time('all-bans', '/v1/decisions/active', false);
      const refreshMs = calls.reduce((a, c) => a + c.median, 0);
      const refreshBytes = calls.reduce((a, c) => a + c.bytes, 0);
      emit({
        bench: 'dashboard-refresh-vs-all-bans',
        bans: N,
        refreshMs: +refreshMs.toFixed(1),
        refreshBytes,
        allBansMs: Math.round(all.median),
        allBansBytes: all.bytes,
        bytesRatio: Math.round(all.bytes / refreshBytes),
      });
    } finally {
      await hub.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

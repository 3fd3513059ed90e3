import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIPv4 } from '../src/core/address.js';
import { startHub } from '../src/hub/hub.js';
import type { DecisionInput } from '../src/store/types.js';
import { input } from './active-views.js';
import type { Emit } from './list.js';

const PULL_GOAL_MS = 1000;
const POLL_GOAL_MS = 5;
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * What an edge router's pull costs (issue 12): the whole list at 100,000 bans in each format,
 * aggregated, and the 304 answer to a poll when nothing changed, over real HTTP against a hub.
 * Side by side: what the route did before (load every ban in force, join them in one string).
 */
export default async function blocklistBench(emit: Emit): Promise<void> {
  const N = Number(process.env.RAMPART_BENCH_BANS ?? 100_000);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-blocklist-'));
  const hub = await startHub({ dataDir: dir, apiPort: 0, brokerPort: 0, protectInterfaces: false });
  try {
    const now = Date.now();
    for (let i = 0; i < N; i += 10_000) {
      const page: DecisionInput[] = [];
      for (let j = i; j < Math.min(N, i + 10_000); j++) {
        // Runs of neighbours so aggregation has something to merge.
        const target = formatIPv4((10 << 24) + j * (j % 7 === 0 ? 2 : 1));
        page.push({ ...input(0, now), target, origin: 'web1', createdAt: now });
      }
      await hub.store.append(page);
    }
    const headers = { authorization: `Bearer ${hub.adminToken}` };
    const get = async (path: string, extra: Record<string, string> = {}) => {
      const t0 = process.hrtime.bigint();
      const res = await fetch(new URL(path, hub.url), { headers: { ...headers, ...extra } });
      const body = await res.text();
      return { ms: ms(t0), status: res.status, bytes: body.length, etag: res.headers.get('etag') ?? '' };
    };
    const median = async (fn: () => Promise<{ ms: number }>, runs: number) => {
      await fn();
      const times: number[] = [];
      for (let r = 0; r < runs; r++) times.push((await fn()).ms);
      times.sort((a, b) => a - b);
      return times[Math.floor(runs / 2)]!;
    };

    // Before: the route loaded every ban and built the body in memory.
    const before = await median(async () => {
      const t0 = process.hrtime.bigint();
      const { decisions } = await hub.core.active();
      const text = [...new Set(decisions.map((d) => d.target))].join('\n');
      return { ms: ms(t0), bytes: text.length };
    }, 3);
    for (const [name, path] of [
      ['txt', '/v1/blocklist'],
      ['json', '/v1/blocklist.json'],
      ['csv', '/v1/blocklist.csv'],
      ['mikrotik', '/v1/blocklist.rsc'],
      ['txt-aggregated', '/v1/blocklist?aggregate=1'],
    ] as const) {
      const one = await get(path);
      const pull = await median(() => get(path), 3);
      emit({
        bench: `blocklist-pull-${name}`,
        bans: N,
        medianMs: Math.round(pull),
        bytes: one.bytes,
        goalMs: PULL_GOAL_MS,
        withinGoal: pull < PULL_GOAL_MS,
        ...(name === 'txt' ? { loadAllBeforeMs: Math.round(before) } : {}),
      });
    }
    // Memory: the streamed pull against building the body in memory, heap peaks sampled every 5 ms
    // (the client counts bytes as they come and keeps none).
    const peak = async (fn: () => Promise<unknown>) => {
      global.gc?.();
      const base = process.memoryUsage().heapUsed;
      let top = base;
      const timer = setInterval(() => {
        top = Math.max(top, process.memoryUsage().heapUsed);
      }, 5);
      // A synchronous build blocks the sampler: sample once more while its result is still held.
      const result = await fn();
      top = Math.max(top, process.memoryUsage().heapUsed);
      clearInterval(timer);
      return { mb: Math.round((top - base) / 1e6), result };
    };
    const streamedMb = await peak(async () => {
      const res = await fetch(new URL('/v1/blocklist.rsc', hub.url), { headers });
      let bytes = 0;
      for await (const piece of res.body!) bytes += (piece as Uint8Array).length;
      return bytes;
    });
    const inMemoryMb = await peak(async () => {
      const { decisions } = await hub.core.active();
      return decisions
        .map((d) => `/ip firewall address-list add list="rampart" address=${d.target}\n`)
        .join('');
    });
    emit({
      bench: 'blocklist-pull-heap',
      bans: N,
      format: 'mikrotik',
      streamedPeakMb: streamedMb.mb,
      inMemoryPeakMb: inMemoryMb.mb,
    });

    const { etag } = await get('/v1/blocklist');
    const poll = await median(() => get('/v1/blocklist', { 'if-none-match': etag }), 21);
    const check = await get('/v1/blocklist', { 'if-none-match': etag });
    emit({
      bench: 'blocklist-poll-304',
      bans: N,
      status: check.status,
      medianMs: +poll.toFixed(2),
      goalMs: POLL_GOAL_MS,
      withinGoal: check.status === 304 && poll < POLL_GOAL_MS,
      fullPullBeforeMs: Math.round(before),
    });
  } finally {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

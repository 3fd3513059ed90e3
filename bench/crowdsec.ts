import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newBouncerKey, tokenHash } from '../src/hub/auth.js';
import { startHub } from '../src/hub/hub.js';
import type { Emit } from './list.js';

const N = 100_000;
const GOAL_MS = 2000;

const v6 = (i: number) => `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;

async function timed(url: string, headers: Record<string, string>): Promise<{ ms: number; bytes: number }> {
  const t0 = process.hrtime.bigint();
  const res = await fetch(url, { headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  JSON.parse(text);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: text.length };
}

/**
 * A CrowdSec bouncer's startup pull of 100,000 bans (`/v1/decisions/stream?startup=true`, what
 * crowdsec-firewall-bouncer sends first), side by side with the agents' own snapshot of the same
 * bans (`/v1/decisions/active`) from the same hub; then a delta pull after 1,000 more bans.
 */
export default async function crowdsecBench(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-crowdsec-'));
  const hub = await startHub({ dataDir: join(dir, 'data'), apiPort: 0, brokerPort: 0 });
  try {
    for (let i = 0; i < N; i += 10_000) {
      await hub.core.banMany(
        Array.from({ length: 10_000 }, (_, j) => ({ target: v6(i + j), duration: 3600, reason: 'bench' })),
      );
    }
    const key = newBouncerKey();
    await hub.store.addBouncer('bench', tokenHash(key), Date.now());
    const bouncer = { 'x-api-key': key };
    const startup = await timed(`${hub.url}/v1/decisions/stream?startup=true`, bouncer);
    const agents = await timed(`${hub.url}/v1/decisions/active`, {
      authorization: `Bearer ${hub.adminToken}`,
    });
    await hub.core.banMany(
      Array.from({ length: 1000 }, (_, j) => ({ target: v6(N + j), duration: 3600, reason: 'bench' })),
    );
    const delta = await timed(`${hub.url}/v1/decisions/stream`, bouncer);
    emit({
      bench: 'crowdsec-stream-startup',
      decisions: N,
      startupMs: Math.round(startup.ms),
      startupMB: +(startup.bytes / 1e6).toFixed(1),
      agentSnapshotMs: Math.round(agents.ms),
      startupVsAgentSnapshot: +(startup.ms / agents.ms).toFixed(2),
      deltaOf1000Ms: Math.round(delta.ms),
      goalMs: GOAL_MS,
      startupVsGoal: +(startup.ms / GOAL_MS).toFixed(2),
    });
  } finally {
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

import { sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub } from '../src/hub/hub.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { DecisionInput } from '../src/store/types.js';
import { seal } from '../src/trust/envelope.js';
import { generateKeyPair, publicKeyToText } from '../src/trust/keys.js';
import type { Emit } from './list.js';

const GOAL = 10_000;

function input(i: number, now: number): DecisionInput {
  const target = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    action: 'ban',
    target,
    family: 4,
    duration: 3600,
    expiresAt: now + 3_600_000,
    reason: 'bench',
    rule: 'sshd',
    origin: 'web1',
    createdAt: now,
    set: 'blocklist',
  };
}

const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

/**
 * The hub's side of the fleet's 10,000 decisions/s goal: the SQLite log alone (one transaction
 * per decision vs batches of 100, side by side), then whole reports through the hub: envelope
 * verify, policy, append, seal and publish on the embedded broker.
 */
export default async function hubBench(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-hub-'));
  try {
    const N = 20_000;
    const now = Date.now();
    const store = new SqliteStore(join(dir, 'log.db'));
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await store.append([input(i, now)]);
    const single = secs(t0);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i += 100)
      await store.append(Array.from({ length: 100 }, (_, j) => input(N + i + j, now)));
    const batched = secs(t0);
    if ((await store.head()) !== 2 * N) throw new Error('log lost appends');
    await store.close();
    emit({
      bench: 'hub-store-append',
      decisions: N,
      singlePerSecond: Math.round(N / single),
      batch100PerSecond: Math.round(N / batched),
      batchVsSingle: +(single / batched).toFixed(2),
      singleVsGoal10k: +(N / single / GOAL).toFixed(2),
    });

    // Whole reports: a hub with its embedded broker; rate limit raised so every report is a ban.
    const hub = await startHub({
      dataDir: join(dir, 'data'),
      apiPort: 0,
      brokerPort: 0,
      policy: { rateBurst: 1e9, ratePerMinute: 1e9 },
    });
    try {
      const node = generateKeyPair();
      await hub.core.addNode('web1', 'x');
      await hub.core.enrol('web1', 'x', publicKeyToText(node.publicKey), 'h');
      const M = 10_000;
      const envs = Array.from({ length: M }, (_, i) =>
        seal(
          'report',
          { target: input(i, now).target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: now },
          'web1',
          node.privateKey,
        ),
      );
      const head0 = await hub.store.head();
      t0 = process.hrtime.bigint();
      await Promise.all(envs.map((e) => hub.core.handleBusMessage('web1', e)));
      const full = secs(t0);
      const made = (await hub.store.head()) - head0;
      if (made !== M) throw new Error(`expected ${M} decisions, got ${made}`);
      // The floor any signed design pays per decision: one Ed25519 verify (report) + one sign (decision).
      const data = Buffer.alloc(300, 1);
      const sig = sign(null, data, node.privateKey);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < M; i++) {
        verify(null, data, node.publicKey, sig);
        sign(null, data, node.privateKey);
      }
      const floor = secs(t0);
      // Operator bans (API/import path): no envelope to verify, one signature per decision.
      const head1 = await hub.store.head();
      t0 = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: M }, (_, i) => hub.core.ban({ target: `10.200.${(i >> 8) & 255}.${i & 255}` })),
      );
      const manual = secs(t0);
      if ((await hub.store.head()) - head1 !== M) throw new Error('operator bans lost');
      emit({
        bench: 'hub-operator-ban',
        bans: M,
        decisionsPerSecond: Math.round(M / manual),
        vsStoreSingleAppend: +(single / N / (manual / M)).toFixed(2),
        vsGoal10k: +(M / manual / GOAL).toFixed(2),
      });
      emit({
        bench: 'hub-report-to-decision',
        reports: M,
        decisionsPerSecond: Math.round(M / full),
        cryptoFloorPerSecond: Math.round(M / floor),
        vsCryptoFloor: +(floor / full).toFixed(2),
        vsGoal10k: +(M / full / GOAL).toFixed(2),
      });
    } finally {
      await hub.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fleet-wide counting costs, in process. (1) The agent's detection hot path over a seeded sshd
 * auth log: the built-in sshd rule (which has a fleet threshold) with the below-threshold hook
 * off, the same rule without `fleet:` (the engine before this feature), and the hook on feeding
 * the real batcher, side by side in one run. (2) The hub's counter under a flood of 1,000,000
 * distinct addresses: time per entry and heap held, against the cap.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetHitBatcher } from '../src/agent/fleet-hits.js';
import { Engine } from '../src/detect/engine.js';
import type { RuleSpec } from '../src/detect/rule.js';
import { loadRulesFile } from '../src/detect/rules-file.js';
import { FleetCounter } from '../src/hub/fleet-counter.js';
import { generateAuthLog } from './gen-auth-log.js';
import type { Emit } from './list.js';

const LINES = Number(process.env.RAMPART_BENCH_LINES ?? 500_000);
const FLOOD = 1_000_000;
const ROUNDS = 3;

/** Best lines/s of each engine factory; rounds interleaved so drift on a shared box hits all alike. */
function linesPerSecond(lines: string[], makers: Array<() => Engine>): number[] {
  const best = makers.map(() => 0);
  for (let r = 0; r < ROUNDS; r++) {
    makers.forEach((make, k) => {
      const e = make();
      const t0 = process.hrtime.bigint();
      for (const text of lines) e.feed({ text, source: 'auth.log' });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      best[k] = Math.max(best[k]!, lines.length / s);
    });
  }
  return best.map(Math.round);
}

export default async function (emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-fleet-'));
  try {
    const log = join(dir, 'auth.log');
    await generateAuthLog(log, { lines: LINES, seed: 42 });
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // Compiled to .bench/build/bench/; the rules folder is the repository's.
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const sshd = loadRulesFile(join(root, 'rules/sshd.yaml'))[0]!;
    const { fleet: _, ...withoutFleet } = sshd;
    const plain: RuleSpec = withoutFleet;
    const opts = { clock: 'log' as const };

    let batcher!: FleetHitBatcher;
    // The rule without fleet: is measured twice: the gap between the two is this run's noise floor.
    const [before, off, on, again] = linesPerSecond(lines, [
      () => new Engine([plain], opts),
      () => new Engine([sshd], opts),
      () => {
        batcher = new FleetHitBatcher({ send: async () => {}, minGapMs: 0 });
        return new Engine([sshd], { ...opts, onBelowThreshold: (rule, ip) => batcher.add(rule, ip) });
      },
      () => new Engine([plain], opts),
    ]) as [number, number, number, number];
    emit({
      bench: 'fleet-counting',
      what: 'agent detection, lines/s (best of 3, in process)',
      lines: lines.length,
      ruleWithoutFleet: before,
      fleetRuleHookOff: off,
      fleetRuleHookOn: on,
      ruleWithoutFleetAgain: again,
      offVsBefore: Number((off / before).toFixed(3)),
      onVsBefore: Number((on / before).toFixed(3)),
      noiseFloor: Number((again / before).toFixed(3)),
      pendingEntries: batcher.size,
      goal: 'offVsBefore within the noise floor of 1 (off costs nothing), onVsBefore >= 0.8',
    });

    const maxEntries = 100_000;
    let evicted = 0;
    const counter = new FleetCounter({
      rules: new Map([['sshd', { maxretry: 10, findtime: 3600 }]]),
      perNode: 2,
      minNodes: 2,
      maxEntries,
      onEvict: (n) => {
        evicted += n;
      },
    });
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const now = Date.now();
    for (let i = 0; i < FLOOD; i++) {
      const a = 0x0a000000 + i;
      const ip = `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
      counter.add(`web${i % 50}`, 'sshd', ip, 1, now + (i >> 10));
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    globalThis.gc?.();
    const heapMB = (process.memoryUsage().heapUsed - heap0) / 1048576;
    emit({
      bench: 'fleet-counting',
      what: 'hub counter under a flood of distinct addresses',
      addresses: FLOOD,
      maxEntries,
      entries: counter.size,
      evictions: evicted,
      addsPerSecond: Math.round(FLOOD / s),
      heapHeldMB: Math.round(heapMB),
      bytesPerEntry: Math.round((heapMB * 1048576) / counter.size),
      comparison: 'entries vs maxEntries (bounded), heap held vs goal',
      goal: 'entries <= maxEntries, heapHeldMB <= 100',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * nftables backend vs raw `nft -f`: load 100,000 and 1,000,000 bans both ways in a throwaway
 * network namespace, and the latency of a single ban through the batcher to a resolved commit.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatIPv4, parseTarget, type Target } from '../src/core/address.js';
import { Batcher } from '../src/firewall/batcher.js';
import { NftablesFirewall } from '../src/firewall/nftables.js';
import type { Emit } from './list.js';

const BENCH = 'firewall-nft';

export default async function (emit: Emit): Promise<void> {
  if (process.getuid?.() !== 0) {
    emit({ bench: BENCH, skipped: 'needs root (network namespaces, nft)' });
    return;
  }
  const ns = `rp-bench-${process.pid}-${randomBytes(2).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'rampart-bench-nft-'));
  execFileSync('ip', ['netns', 'add', ns]);
  // nsenter only switches the network namespace; `ip netns exec` also remounts /sys on every
  // call, which would be charged to each commit although production runs nft directly.
  const prefix = ['nsenter', `--net=/run/netns/${ns}`];
  const nft = (args: string[]) =>
    execFileSync(prefix[0]!, [...prefix.slice(1), 'nft', ...args], { maxBuffer: 1 << 30 }).toString();
  try {
    for (const n of [100_000, 1_000_000]) {
      const targets: Target[] = new Array(n);
      for (let i = 0; i < n; i++) targets[i] = parseTarget(formatIPv4((10 << 24) + i + 1));

      // The hand-written file an operator would load: one table, one timeout set, every element.
      const file = path.join(dir, `raw-${n}.nft`);
      const elems = targets.map((t) => `${t.text} timeout 3600s`).join(',\n');
      writeFileSync(
        file,
        `table inet raw {\n set s { type ipv4_addr; flags timeout; elements = {\n${elems}\n } }\n}\n`,
      );
      // Alternate raw and rampart runs and keep each side's best: the machine is shared.
      const runs = n > 100_000 ? 2 : 3;
      const raw: number[] = [];
      const ours: number[] = [];
      for (let r = 0; r < runs; r++) {
        let t0 = performance.now();
        nft(['-f', file]);
        raw.push(performance.now() - t0);
        nft(['delete', 'table', 'inet', 'raw']);

        const fw = new NftablesFirewall({ prefix, table: 'rampart_bench' });
        await fw.init();
        t0 = performance.now();
        for (const t of targets) fw.add(t, 3600);
        await fw.commit();
        ours.push(performance.now() - t0);
        nft(['delete', 'table', 'inet', 'rampart_bench']);
      }
      const rawMs = Math.min(...raw);
      const rampartMs = Math.min(...ours);
      emit({
        bench: BENCH,
        case: 'load',
        elements: n,
        runs,
        raw_nft_ms: Math.round(rawMs),
        rampart_ms: Math.round(rampartMs),
        raw_all_ms: raw.map(Math.round),
        rampart_all_ms: ours.map(Math.round),
        ratio_rampart_over_raw: Number((rampartMs / rawMs).toFixed(2)),
        goal: 'ratio <= 1.3',
      });
    }

    // Single bans, one after another: time from batcher.add() to the commit that holds it.
    const fw = new NftablesFirewall({ prefix, table: 'rampart_latency' });
    await fw.init();
    const batcher = new Batcher(fw);
    const run = promisify(execFile);
    const lat: number[] = [];
    // The floor, interleaved so both see the same machine load: the same one-element
    // transaction spawned by hand.
    const rawLat: number[] = [];
    const sample: Target[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = parseTarget(formatIPv4((172 << 24) + (16 << 16) + i + 1));
      let t0 = performance.now();
      await batcher.add(t, 600);
      lat.push(performance.now() - t0);
      if (i % 200 === 0) sample.push(t);
      const text = formatIPv4((172 << 24) + (17 << 16) + i + 1);
      t0 = performance.now();
      const child = run(prefix[0]!, [...prefix.slice(1), 'nft', '-f', '-']);
      child.child.stdin!.end(`add element inet rampart_latency blocklist_v4 { ${text} timeout 600s }\n`);
      await child;
      rawLat.push(performance.now() - t0);
    }
    await batcher.close();
    rawLat.sort((a, b) => a - b);
    let verified = 0;
    for (const t of sample) {
      if (
        nft(['get', 'element', 'inet', 'rampart_latency', 'blocklist_v4', `{ ${t.text} }`]).includes(t.text)
      )
        verified++;
    }
    lat.sort((a, b) => a - b);
    const pct = (p: number, xs = lat) =>
      Number(xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!.toFixed(2));
    emit({
      bench: BENCH,
      case: 'single-ban latency (default batcher, add() to commit resolved)',
      bans: lat.length,
      p50_ms: pct(50),
      p99_ms: pct(99),
      max_ms: Number(lat[lat.length - 1]!.toFixed(2)),
      raw_nft_spawn_p50_ms: pct(50, rawLat),
      raw_nft_spawn_p99_ms: pct(99, rawLat),
      ratio_p50_over_raw_spawn: Number((pct(50) / pct(50, rawLat)).toFixed(2)),
      goal: 'p99 < 10 ms',
      p99_over_goal: Number((pct(99) / 10).toFixed(2)),
      verified_with_nft_get_element: `${verified}/${sample.length}`,
    });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * nftables backend, in-process libnftables vs spawned nft vs raw `nft -f`, in a throwaway network
 * namespace: bulk loads of 100,000 and 1,000,000 bans (with the event loop's longest stall while
 * the library loads), and the latency of single bans through the batcher. Each figure of issue
 * 10's table is printed with its goal and the library/spawn ratio side by side.
 */
import { execFile, execFileSync, fork, type Serializable } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatIPv4, parseTarget, type Target } from '../src/core/address.js';
import { Batcher } from '../src/firewall/batcher.js';
import { NftablesFirewall } from '../src/firewall/nftables.js';
import type { Emit } from './list.js';

const BENCH = 'firewall-nft';
const here = path.dirname(fileURLToPath(import.meta.url));
const DRIVERS = ['library', 'spawn'] as const;
/** BENCH_QUICK=1: 100,000 only and 300 single bans (a noisy shared machine). */
const QUICK = process.env.BENCH_QUICK === '1';
/** FIREWALL_NFT_BULK=0: only the single-ban latency (the bulk loads take minutes of CPU). */
const BULK = process.env.FIREWALL_NFT_BULK !== '0';

const ms = (x: number) => Number(x.toFixed(2));
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export default async function (emit: Emit): Promise<void> {
  if (process.getuid?.() !== 0) {
    emit({ bench: BENCH, skipped: 'needs root (network namespaces, nft)' });
    return;
  }
  const ns = `rp-bench-${process.pid}-${randomBytes(2).toString('hex')}`;
  const dir = mkdtempSync(path.join(tmpdir(), 'rampart-bench-nft-'));
  execFileSync('ip', ['netns', 'add', ns]);
  // nsenter only switches the network namespace; `ip netns exec` also remounts /sys on every
  // call, which would be charged to each spawn although production runs nft directly. The
  // library driver follows the same prefix with setns(2) in its worker thread.
  const prefix = ['nsenter', `--net=/run/netns/${ns}`];
  const nft = (args: string[]) =>
    execFileSync(prefix[0]!, [...prefix.slice(1), 'nft', ...args], { maxBuffer: 1 << 30 }).toString();
  try {
    for (const n of !BULK ? [] : QUICK ? [100_000] : [100_000, 1_000_000]) {
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
      const runs = n > 100_000 ? 1 : 2;
      const raw: number[] = [];
      const ours: Record<(typeof DRIVERS)[number], number[]> = { library: [], spawn: [] };
      let stall = 0;
      for (let r = 0; r < runs; r++) {
        let t0 = performance.now();
        nft(['-f', file]);
        raw.push(performance.now() - t0);
        nft(['delete', 'table', 'inet', 'raw']);
        for (const driver of DRIVERS) {
          const fw = new NftablesFirewall({ prefix, table: 'rampart_bench', driver });
          await fw.init();
          t0 = performance.now();
          for (const t of targets) fw.add(t, 3600);
          // The stall is the backend's own (commit), not this benchmark's staging loop.
          const lag = monitorEventLoopDelay({ resolution: 5 });
          lag.enable();
          await fw.commit();
          ours[driver].push(performance.now() - t0);
          lag.disable();
          if (driver === 'library') stall = Math.max(stall, lag.max / 1e6);
          await fw.shutdown();
          nft(['delete', 'table', 'inet', 'rampart_bench']);
        }
      }
      const rawMs = Math.min(...raw);
      const lib = Math.min(...ours.library);
      const spawned = Math.min(...ours.spawn);
      emit({
        bench: BENCH,
        figure: `bulk ${n} bans vs raw nft -f of the same elements (backend alone)`,
        elements: n,
        runs,
        raw_nft_ms: Math.round(rawMs),
        library_ms: Math.round(lib),
        spawn_ms: Math.round(spawned),
        ratio_library_over_raw: ms(lib / rawMs),
        ratio_spawn_over_raw: ms(spawned / rawMs),
        ratio_library_over_spawn: ms(lib / spawned),
        library_max_event_loop_stall_ms: Math.round(stall),
        goal: 'ratio_library_over_raw <= 1.1 and no event-loop stall over 50 ms',
      });
    }

    // Single bans, one after another: time from batcher.add() to the commit that holds it. The
    // library side runs in a child process that never forks (bench/firewall-nft-library-bans.ts:
    // a spawn here would make its next in-process ban pay ~3 ms of page faults); the spawn side
    // and the raw nft spawns stay in this process.
    const bans = QUICK ? 300 : 1000;
    const lat: Record<(typeof DRIVERS)[number], number[]> = { library: [], spawn: [] };
    const sample: Target[] = [];
    // Two library sides: small commits as netlink batches (the default, ADR 0042) and every
    // commit through libnftables' script path, which refreshes its cache after each commit.
    const side = () => {
      const child = fork(path.join(here, 'firewall-nft-library-bans.js'), [], { stdio: 'inherit' });
      const ask = (m: unknown) =>
        new Promise<{ wall?: number[]; cpu?: number[]; main?: number[]; error?: string }>(
          (resolve, reject) => {
            child.once('message', (a: { error?: string }) =>
              a.error ? reject(new Error(`library side: ${a.error}`)) : resolve(a),
            );
            child.send(m as Serializable);
          },
        );
      return { child, ask };
    };
    const { child, ask } = side();
    const script = side();
    await ask({ prefix, table: 'rampart_lat_library' });
    await script.ask({ prefix, table: 'rampart_lat_script', netlink: false });
    const scriptLat: number[] = [];
    const scriptMain: number[] = [];
    const spawnFw = new NftablesFirewall({ prefix, table: 'rampart_lat_spawn', driver: 'spawn' });
    await spawnFw.init();
    const spawnBatcher = new Batcher(spawnFw);
    // The floor for spawning: the same one-element transaction spawned by hand.
    const run = promisify(execFile);
    const rawLat: number[] = [];
    const libCpu: number[] = [];
    const libMain: number[] = [];
    // Twice `bans`: the first `bans` after start include V8 compiling the ban path (TurboFan,
    // at a few hundred bans in: 10-15 ms of compile each time, on the main thread or, by default,
    // beside it, where the ban still waits 2-5 ms); the steady-state figure is the second half.
    // Both are printed. The spawn sides run over the first half only (they compile nothing).
    const addrs = Array.from({ length: 2 * bans }, (_, i) =>
      parseTarget(formatIPv4((172 << 24) + (16 << 16) + i + 1)),
    );
    // Blocks of 100 per side, alternated, so all sides see the same drift in machine load.
    const BLOCK = 100;
    for (let from = 0; from < 2 * bans; from += BLOCK) {
      const block = addrs.slice(from, from + BLOCK);
      const got = await ask({ addrs: block.map((t) => t.text) });
      lat.library.push(...got.wall!);
      libCpu.push(...got.cpu!);
      libMain.push(...got.main!);
      const viaScript = await script.ask({ addrs: block.map((t) => t.text) });
      scriptLat.push(...viaScript.wall!);
      scriptMain.push(...viaScript.main!);
      if (from >= bans) continue;
      for (const t of block) {
        const t0 = performance.now();
        await spawnBatcher.add(t, 600);
        lat.spawn.push(performance.now() - t0);
      }
      sample.push(block[0]!);
      for (let i = from; i < from + block.length; i++) {
        const t0 = performance.now();
        const child = run(prefix[0]!, [...prefix.slice(1), 'nft', '-f', '-']);
        child.child.stdin!.end(
          `add element inet rampart_lat_spawn blocklist_v4 { ${formatIPv4((172 << 24) + (17 << 16) + i + 1)} timeout 600s }\n`,
        );
        await child;
        rawLat.push(performance.now() - t0);
      }
    }
    for (const c of [child, script.child]) {
      const exited = new Promise((r) => c.once('exit', r));
      c.send({ close: true });
      await exited;
    }
    await spawnBatcher.close();
    await spawnFw.shutdown();
    let verified = 0;
    for (const t of sample) {
      const got = nft(['get', 'element', 'inet', 'rampart_lat_library', 'blocklist_v4', `{ ${t.text} }`]);
      if (got.includes(t.text)) verified++;
    }
    const first = { library: lat.library.splice(0, bans), script: scriptLat.splice(0, bans) };
    for (const xs of [libCpu, libMain, scriptMain]) xs.splice(0, bans);
    for (const xs of [
      ...Object.values(lat),
      rawLat,
      libCpu,
      libMain,
      scriptLat,
      scriptMain,
      ...Object.values(first),
    ])
      xs.sort((a, b) => a - b);
    emit({
      bench: BENCH,
      figure: `single ban, add() -> in the kernel set, ${bans} bans after the ${bans} that warmed the code (those beside)`,
      bans,
      library_p50_ms: ms(pct(lat.library, 50)),
      library_p99_ms: ms(pct(lat.library, 99)),
      // The first `bans` after start: V8 compiles the ban path during them.
      library_first_p50_ms: ms(pct(first.library, 50)),
      library_first_p99_ms: ms(pct(first.library, 99)),
      library_script_first_p99_ms: ms(pct(first.script, 99)),
      // CPU time of the library side's process (all its threads) per ban: the rest of the wall
      // time is waiting for a CPU on a loaded machine.
      library_cpu_p50_ms: ms(pct(libCpu, 50)),
      library_cpu_p99_ms: ms(pct(libCpu, 99)),
      // The main thread alone (where a small commit runs, ADR 0034): V8's background threads
      // (concurrent marking, compilers) are in the figure above but do not delay the ban.
      library_main_thread_cpu_p50_ms: ms(pct(libMain, 50)),
      library_main_thread_cpu_p99_ms: ms(pct(libMain, 99)),
      // The same bans through libnftables' script path alone (netlinkElements: false).
      library_script_p50_ms: ms(pct(scriptLat, 50)),
      library_script_p99_ms: ms(pct(scriptLat, 99)),
      library_script_main_thread_cpu_p50_ms: ms(pct(scriptMain, 50)),
      library_script_main_thread_cpu_p99_ms: ms(pct(scriptMain, 99)),
      spawn_p50_ms: ms(pct(lat.spawn, 50)),
      spawn_p99_ms: ms(pct(lat.spawn, 99)),
      raw_nft_spawn_p50_ms: ms(pct(rawLat, 50)),
      raw_nft_spawn_p99_ms: ms(pct(rawLat, 99)),
      ratio_library_over_spawn_p99: ms(pct(lat.library, 99) / pct(lat.spawn, 99)),
      ratio_library_over_script_p99: ms(pct(lat.library, 99) / pct(scriptLat, 99)),
      goal: 'library p99 <= 1 ms',
      verified_with_nft_get_element: `${verified}/${sample.length}`,
      loadAverage: Number(loadavg()[0]!.toFixed(1)),
    });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

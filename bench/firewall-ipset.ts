import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { formatIPv4, parseTarget, type Target } from '../src/core/address.js';
import { IpsetFirewall } from '../src/firewall/ipset.js';
import type { Emit } from './list.js';

const run = promisify(execFile);

const DRIVERS = ['library', 'spawn'] as const;
type Driver = (typeof DRIVERS)[number];
/** BENCH_QUICK=1: 100,000 only and 300 single bans (a noisy shared machine). */
const QUICK = process.env.BENCH_QUICK === '1';
/** FIREWALL_IPSET_BULK=0: only the single-ban latency (the bulk loads take minutes of CPU). */
const BULK = process.env.FIREWALL_IPSET_BULK !== '0';
const ms2 = (x: number) => Number(x.toFixed(2));

/**
 * Loads 100,000 and 1,000,000 timed bans through rampart's ipset backend, once through libipset
 * in-process and once spawning `ipset restore`, and side by side the same elements from a
 * hand-written restore file into an identical set; prints the times, the ratios and the event
 * loop's longest stall during the library load. Also single bans committed one by one through
 * both drivers. Runs in a namespace it creates and deletes.
 */
export default async function firewallIpsetBench(emit: Emit): Promise<void> {
  const ns = `rp-bench-ipset-${randomBytes(3).toString('hex')}`;
  // nsenter only switches the network namespace (ip netns exec also remounts /sys per call).
  const prefix = ['nsenter', `--net=/run/netns/${ns}`];
  const dir = await mkdtemp(join(tmpdir(), 'rampart-bench-ipset-'));
  await run('ip', ['netns', 'add', ns]);
  const ipset = (args: string[]) =>
    run('ip', ['netns', 'exec', ns, 'ipset', ...args], { maxBuffer: 1 << 28 });
  try {
    for (const [n, rounds] of (!BULK
      ? []
      : QUICK
        ? [[100_000, 2]]
        : [
            [100_000, 2],
            [1_000_000, 1],
          ]) as Array<[number, number]>) {
      const addrs = Array.from({ length: n }, (_, i) => formatIPv4(0x0a000000 + i));
      const targets: Target[] = addrs.map((a) => parseTarget(a));
      const create = (name: string) => [
        'create',
        name,
        'hash:ip',
        'family',
        'inet',
        'hashsize',
        '1024',
        'maxelem',
        String(2 * n),
        'timeout',
        '0',
      ];
      const count = async (set: string) =>
        Number(/Number of entries: (\d+)/.exec((await ipset(['list', '-t', set])).stdout)?.[1]);
      // The file is written before the clock starts: only ipset's own work is timed.
      const file = join(dir, 'raw.restore');
      await writeFile(file, addrs.map((a) => `add raw ${a} timeout 3600\n`).join(''));

      const raw = async () => {
        await ipset(create('raw'));
        const t0 = performance.now();
        await run(prefix[0]!, [...prefix.slice(1), 'ipset', '-exist', '-file', file, 'restore']);
        const ms = performance.now() - t0;
        const loaded = await count('raw');
        await ipset(['destroy', 'raw']);
        return { ms, loaded, stall: 0, netlink: undefined };
      };
      const ours = (driver: Driver) => async () => {
        await ipset(create('ours'));
        const fw = new IpsetFirewall({ prefix, defaultSet: 'ours', driver });
        await fw.init();
        const t0 = performance.now();
        for (const t of targets) fw.add(t, 3600);
        // The stall is the backend's own (commit), not this benchmark's staging loop.
        const lag = monitorEventLoopDelay({ resolution: 5 });
        lag.enable();
        await fw.commit();
        const ms = performance.now() - t0;
        lag.disable();
        const netlink = { ...fw.netlinkCommits };
        await fw.shutdown();
        const loaded = await count('ours');
        await ipset(['destroy', 'ours']);
        return { ms, loaded, stall: lag.max / 1e6, netlink };
      };
      // Alternate which goes first and keep the best of each: the machine is shared and noisy.
      const runs: Record<'raw' | Driver, number[]> = { raw: [], library: [], spawn: [] };
      const loaded: Record<string, number> = {};
      let stall = 0;
      let netlink: object | undefined;
      for (let r = 0; r < rounds; r++) {
        const order: Array<
          ['raw' | Driver, () => Promise<{ ms: number; loaded: number; stall: number; netlink?: object }>]
        > = [
          ['library', ours('library')],
          ['raw', raw],
          ['spawn', ours('spawn')],
        ];
        if (r % 2 === 1) order.reverse();
        for (const [name, f] of order) {
          const res = await f();
          runs[name].push(res.ms);
          loaded[name] = res.loaded;
          if (name === 'library') {
            stall = Math.max(stall, res.stall);
            netlink = res.netlink;
          }
        }
      }
      const best = (k: 'raw' | Driver) => Math.min(...runs[k]);
      emit({
        bench: 'firewall-ipset',
        figure: `bulk ${n} bans vs raw ipset restore of the same elements (backend alone)`,
        elements: n,
        rounds,
        raw_ipset_restore_ms: Math.round(best('raw')),
        library_ms: Math.round(best('library')),
        spawn_ms: Math.round(best('spawn')),
        ratio_library_over_raw: ms2(best('library') / best('raw')),
        ratio_spawn_over_raw: ms2(best('spawn') / best('raw')),
        ratio_library_over_spawn: ms2(best('library') / best('spawn')),
        library_max_event_loop_stall_ms: Math.round(stall),
        // Netlink sends of the library's last load, and those that fell back to a script (ADR 0072).
        library_netlink_sends: netlink,
        goal: 'ratio_library_over_raw <= 1.1 and no event-loop stall over 50 ms',
        loaded,
        loadAverage: Number(loadavg()[0]!.toFixed(1)),
      });
    }

    // One ban at a time: add + commit, both drivers interleaved so they see the same load.
    await ipset(['create', 'lat', 'hash:ip', 'timeout', '0']);
    const fws = {
      library: new IpsetFirewall({ prefix, defaultSet: 'lat', driver: 'library' }),
      spawn: new IpsetFirewall({ prefix, defaultSet: 'lat', driver: 'spawn' }),
    };
    for (const fw of Object.values(fws)) await fw.init();
    const samples: Record<Driver, number[]> = { library: [], spawn: [] };
    const libCpu: number[] = [];
    const bans = QUICK ? 300 : 1000;
    // Blocks of 100 per driver, alternated, so both see the same drift in machine load; not
    // sample by sample, since each spawn's fork leaves this process's next in-process call
    // several milliseconds of page faults and cold caches (see firewall-nft).
    const BLOCK = 100;
    for (let from = 0; from < bans; from += BLOCK) {
      for (const d of DRIVERS) {
        for (let i = from; i < Math.min(bans, from + BLOCK); i++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          fws[d].add(parseTarget(formatIPv4(0xc0000200 + (i % 256))), 600);
          await fws[d].commit();
          samples[d].push(performance.now() - t0);
          if (d === 'library') {
            const c = process.cpuUsage(c0);
            libCpu.push((c.user + c.system) / 1000);
          }
        }
      }
    }
    for (const fw of Object.values(fws)) await fw.shutdown();
    for (const xs of [...Object.values(samples), libCpu]) xs.sort((a, b) => a - b);
    const pct = (xs: number[], p: number) =>
      ms2(xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!);
    emit({
      bench: 'firewall-ipset',
      figure: `single ban, add() + commit() -> in the kernel set, ${bans} bans`,
      bans,
      library_p50_ms: pct(samples.library, 50),
      library_p99_ms: pct(samples.library, 99),
      // CPU time of this process per library ban; the rest of the wall time is waiting for a CPU.
      library_cpu_p50_ms: pct(libCpu, 50),
      library_cpu_p99_ms: pct(libCpu, 99),
      spawn_p50_ms: pct(samples.spawn, 50),
      spawn_p99_ms: pct(samples.spawn, 99),
      ratio_library_over_spawn_p99: ms2(pct(samples.library, 99) / pct(samples.spawn, 99)),
      goal: 'library p99 <= 1 ms',
      loadAverage: Number(loadavg()[0]!.toFixed(1)),
    });
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The library side of the firewall-nft single-ban figure, in a process that never forks: started
 * once by bench/firewall-nft.ts (`fork`, IPC), it bans the addresses each message names through a
 * Batcher over the in-process driver and answers with each ban's wall time, the process's CPU time and the main thread's.
 *
 * Why a process of its own: every spawn write-protects the spawning process's memory (fork), and
 * the first in-process ban after a block of spawns then took ~200 page faults, about 3.3 ms of CPU
 * on this VM, which was the whole p99 of 1,000 samples (one such ban per block of 100). An agent
 * spawns nothing per ban; the spawn side of the comparison stays in the parent.
 *
 * Messages: `{prefix, table, netlink?}` opens the backend (netlink false: libnftables' script
 * path for every commit) (answers `{ready: true}`), `{addrs: string[]}`
 * bans them one after another (answers `{wall, cpu, main}`, ms per ban), `{close: true}` exits.
 */
import { createRequire } from 'node:module';
import { parseTarget } from '../src/core/address.js';
import { Batcher } from '../src/firewall/batcher.js';
import { NftablesFirewall } from '../src/firewall/nftables.js';

/** This thread's CPU time in ms (clock_gettime CLOCK_THREAD_CPUTIME_ID through koffi). */
function threadCpuClock(): () => number {
  const koffi = createRequire(import.meta.url)('koffi');
  const ts = koffi.struct('rp_bench_timespec', { sec: 'int64', nsec: 'int64' });
  const clock = koffi.load('libc.so.6').func('int clock_gettime(int, _Out_ rp_bench_timespec *)');
  const CLOCK_THREAD_CPUTIME_ID = 3;
  void ts;
  const out = { sec: 0, nsec: 0 };
  return () => {
    clock(CLOCK_THREAD_CPUTIME_ID, out);
    return out.sec * 1e3 + out.nsec / 1e6;
  };
}
const threadMs = threadCpuClock();

type Message = { prefix: string[]; table: string; netlink?: boolean } | { addrs: string[] } | { close: true };

let fw: NftablesFirewall | undefined;
let batcher: Batcher | undefined;
const send = (m: unknown) => process.send!(m);

process.on('message', (m: Message) => {
  void handle(m).catch((err: Error) => send({ error: err.message }));
});

async function handle(m: Message): Promise<void> {
  if ('prefix' in m) {
    fw = new NftablesFirewall({
      prefix: m.prefix,
      table: m.table,
      driver: 'library',
      netlinkElements: m.netlink !== false,
    });
    await fw.init();
    batcher = new Batcher(fw);
    send({ ready: true });
  } else if ('addrs' in m) {
    const wall: number[] = [];
    const cpu: number[] = [];
    const main: number[] = [];
    for (const t of m.addrs.map((a) => parseTarget(a))) {
      const c0 = process.cpuUsage();
      const m0 = threadMs();
      const t0 = performance.now();
      await batcher!.add(t, 600);
      wall.push(performance.now() - t0);
      main.push(threadMs() - m0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    }
    send({ wall, cpu, main });
  } else {
    await batcher?.close();
    await fw?.shutdown();
    process.disconnect();
  }
}

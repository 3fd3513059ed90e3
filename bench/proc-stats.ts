import { readFileSync } from 'node:fs';

/**
 * user + system CPU time of live processes, in ms (from /proc; clock ticks of 10 ms). Counts every
 * thread, so a kernel worker thread and the netlink work it does in the kernel are included.
 */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks * 10;
}

/** The 1-minute load average (the machine is shared: printed next to every timed figure). */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

import { readdirSync, readFileSync } from 'node:fs';

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

/** CPU ms per thread (`main`, or its `/proc/PID/task/TID/comm` name), threads that share a name summed. */
export function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = `${tid === String(pid) ? 'main' : name}#${tid}`;
      out.set(key, (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/**
 * µs per decision by thread name between two {@link cpuByThread} readings of the same processes
 * (summed over them, then divided by `processes`): where a run's CPU went (main, V8's helper
 * threads, libuv's pool, the kernel worker).
 */
export function threadShares(
  before: Array<Map<string, number>>,
  after: Array<Map<string, number>>,
  decisions: number,
  processes = after.length,
): Record<string, number> {
  const sum = new Map<string, number>();
  for (const [i, a] of after.entries())
    for (const [k, v] of a) {
      const name = k.split('#')[0]!;
      sum.set(name, (sum.get(name) ?? 0) + v - (before[i]?.get(k) ?? 0));
    }
  return Object.fromEntries(
    [...sum]
      .filter(([, v]) => v > 0)
      .map(([k, v]) => [k, Number(((v * 1000) / decisions / processes).toFixed(1))]),
  );
}

/**
 * CPU ms of every live process whose name (`/proc/PID/comm`) is one of `names`, per name: the
 * servers a fleet run leans on (PostgreSQL's backends, nats-server, mosquitto, RabbitMQ's
 * beam.smp), whose work per decision is part of the topology's cost.
 */
export function cpuMsByName(names: readonly string[]): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const name = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      if (name in out) out[name]! += cpuMs([Number(pid)]);
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

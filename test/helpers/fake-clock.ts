import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's libfaketime (package libfaketime), for the architecture at hand. */
export const LIBFAKETIME =
  ['x86_64-linux-gnu', 'aarch64-linux-gnu']
    .map((a) => `/usr/lib/${a}/faketime/libfaketime.so.1`)
    .find((f) => existsSync(f)) ?? '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/**
 * One sped-up clock shared by several processes run under libfaketime.
 *
 * libfaketime's `x` speed-up counts from the moment it initialises in each process (0.9.10 does
 * not share a start across processes, whatever FAKETIME_DONT_RESET says), so two processes
 * started a second apart under `+0 x20` would disagree by 19 s. Each process therefore gets the
 * offset that lines its clock up with one model, `t0 + speed × (real − t0)`; what remains is
 * `(speed − 1) ×` the few milliseconds between `spawn()` and the library's start, which
 * `lagMs` measures from the process's own log lines.
 */
export class FakeClock {
  readonly t0 = Date.now();
  constructor(readonly speed: number) {}

  /** The model's time (ms) at real time `real`. */
  now(real = Date.now()): number {
    return this.t0 + this.speed * (real - this.t0);
  }

  /** Real milliseconds for `fakeMs` of faked time. */
  realMs(fakeMs: number): number {
    return fakeMs / this.speed;
  }

  /** Resolves once the model reaches `fakeTime` (the scenario's timeline, not a wait for an event). */
  async until(fakeTime: number): Promise<void> {
    const ms = this.realMs(fakeTime - this.now());
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  }

  /** The environment for a process spawned now: libfaketime preloaded, its clock on the model. */
  env(): Record<string, string> {
    const offset = ((this.speed - 1) * (Date.now() - this.t0)) / 1000;
    return { LD_PRELOAD: LIBFAKETIME, FAKETIME: `+${offset.toFixed(3)} x${this.speed}` };
  }

  /**
   * How far (ms) a process's clock runs behind the model, from its JSON log lines (pino's `time`)
   * and when each arrived here: a line written at real time e ≤ arrival shows time(e), so
   * `now(arrival) − time` bounds the lag from above and the smallest such bound is the tightest.
   */
  lagMs(lines: Array<Record<string, unknown>>, arrivals: number[]): number {
    let lag = Number.POSITIVE_INFINITY;
    lines.forEach((l, i) => {
      if (typeof l.time === 'number' && arrivals[i] !== undefined)
        lag = Math.min(lag, this.now(arrivals[i]) - l.time);
    });
    return lag;
  }
}

// Measured from a first timer on: right at start-up the two clocks are a few hundred faked
// milliseconds apart (a constant: they run at the same rate afterwards).
const PROBE = `
setTimeout(() => {
  const d0 = Date.now(), m0 = performance.now();
  console.log('{}');
  setTimeout(() => {
    console.log(JSON.stringify({ wall: Date.now() - d0, mono: performance.now() - m0 }));
  }, Number(process.argv[1]));
}, 100);
`;

/**
 * Runs a Node process on `clock` with one `setTimeout(fakeMs)` and reports how long the timer
 * took in real time (between the process's two lines arriving here) and what its wall clock
 * (Date.now) and monotonic clock (performance.now, which libuv's timers read) saw: with the
 * speed-up working, real ≈ fakeMs / speed and both clocks ≈ fakeMs.
 */
export async function probeSpeed(
  clock: FakeClock,
  fakeMs: number,
): Promise<{ realMs: number; wallMs: number; monoMs: number }> {
  const env = { ...process.env, ...clock.env() };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', PROBE, String(fakeMs)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const arrivals: number[] = [];
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      while (arrivals.length < out.split('\n').length - 1) arrivals.push(Date.now());
    });
    child.on('exit', (code) => {
      const lines = out.trim().split('\n');
      if (code !== 0 || lines.length !== 2) return reject(new Error(`clock probe exited ${code}: ${out}`));
      const r = JSON.parse(lines[1]!) as { wall: number; mono: number };
      resolve({ realMs: arrivals[1]! - arrivals[0]!, wallMs: r.wall, monoMs: r.mono });
    });
  });
}

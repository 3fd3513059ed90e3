import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { Host } from '../helpers/netns.js';

export const MAIN = resolve('dist/cli/main.js');

/** A rampart process spawned in a namespace, with its JSON log lines collected. */
export class Proc {
  readonly lines: Array<Record<string, unknown>> = [];
  /** When each of `lines` arrived here (Date.now()), for processes on a faked clock. */
  readonly arrivals: number[] = [];
  readonly text: string[] = [];
  private exited_: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line));
          this.arrivals.push(Date.now());
        } catch {
          this.text.push(line);
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => this.text.push(d.toString('utf8')));
    this.exited_ = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** Resolves with the first log line matching, waiting up to `ms`. */
  async waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    ms = 15_000,
    what = 'log line',
  ): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null)
        throw new Error(`process exited (${this.child.exitCode}) before ${what}:\n${this.text.join('')}`);
      if (Date.now() > end)
        throw new Error(`timed out waiting for ${what}:\n${this.text.join('')}\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The last log lines, for failure messages. */
  tail(n = 12): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  count(pred: (l: Record<string, unknown>) => boolean): number {
    return this.lines.filter(pred).length;
  }

  /** Resolves with the exit code once the process has ended by itself. */
  exited(): Promise<number | null> {
    return this.exited_;
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    // `ip netns exec` passes the signal on to rampart.
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const code = await this.exited_;
    clearTimeout(t);
    return code;
  }
}

/**
 * FLEET_NODE_FLAGS: extra node flags for fleet processes, for profiling a run (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`; NODE_OPTIONS refuses --cpu-prof); FLEET_NODE_FLAGS_FOR
 * names the command they are for (`hub`, `agent`; all when unset). The profiler's SIGPROF can
 * interrupt a netlink call in libnftables (EINTR fails the agent's start), so profile agents with care.
 */
const PROFILE_FLAGS = (process.env.FLEET_NODE_FLAGS ?? '').split(' ').filter(Boolean);
export const profileFlags = (command: string | undefined) =>
  (process.env.FLEET_NODE_FLAGS_FOR ?? command) === command ? PROFILE_FLAGS : [];

export function rampart(host: Host, args: string[]): Proc {
  return new Proc(
    // As the systemd units start it (the `rampart` command's first line carries the flags).
    host.spawn(process.execPath, [...NODE_FLAGS, ...profileFlags(args[0]), MAIN, ...args], {
      env: { ...process.env, RAMPART_LOG_LEVEL: process.env.FLEET_LOG_LEVEL ?? 'info' },
    }),
  );
}

/**
 * Starts an enrolled agent in `host` enforcing with nftables, with `DIR/rampart.yaml` as its
 * config, and resolves once its bus is up.
 */
export async function startNftAgent(host: Host, dir: string, more: string[] = []): Promise<Proc> {
  const agent = rampart(host, [
    'agent',
    '--data',
    dir,
    '--config',
    join(dir, 'rampart.yaml'),
    '--firewall',
    'nftables',
    ...more,
  ]);
  try {
    await agent.waitFor((l) => l.msg === 'bus' && l.status === 'up', 20_000, 'agent bus up');
  } catch (err) {
    await agent.stop();
    throw err;
  }
  return agent;
}

/** Runs a one-shot rampart command in a namespace; resolves with stdout, rejects on a non-zero exit. */
export function cli(host: Host, args: string[]): Promise<string> {
  return host.exec(process.execPath, [MAIN, ...args]);
}

/** Runs a command and resolves with its exit code and output instead of throwing. */
export async function cliStatus(host: Host, args: string[]): Promise<{ code: number; out: string }> {
  try {
    return { code: 0, out: await cli(host, args) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `rampart-${tag}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** sshd failure lines as auth.log has them (RFC 3164 stamp, local time), from `addr`. */
export function sshdFailures(addr: string, n: number, host = 'web'): string {
  const d = new Date();
  const mon = d.toLocaleString('en-US', { month: 'short' });
  const stamp = `${mon} ${String(d.getDate()).padStart(2, ' ')} ${d.toTimeString().slice(0, 8)}`;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += `${stamp} ${host} sshd[${1000 + i}]: Failed password for invalid user admin${i} from ${addr} port ${40000 + i} ssh2\n`;
  }
  return out;
}

export function appendLog(file: string, text: string): void {
  appendFileSync(file, text);
}

export function createLog(file: string): void {
  writeFileSync(file, '');
}

/** True when `addr` is an element of rampart's nft set in the host (namespace). */
export async function inKernelSet(host: Host, addr: string): Promise<boolean> {
  const set = addr.includes(':') ? 'blocklist_v6' : 'blocklist_v4';
  try {
    await host.exec('nft', ['get', 'element', 'inet', 'rampart', set, `{ ${addr} }`]);
    return true;
  } catch {
    return false;
  }
}

export async function until(
  fn: () => Promise<boolean> | boolean,
  ms = 15_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

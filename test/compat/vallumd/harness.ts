import { type ChildProcess, execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Host } from '../../helpers/netns.js';

const run = promisify(execFile);

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
export const ORIGINAL = path.resolve(repoRoot, '../shared/originals/vallumd');
export const CLI = path.join(repoRoot, 'dist/cli/main.js');

/** Builds the original vallumd with cmake in a temp folder; returns the binary and a cleanup. */
export async function buildOriginalVallumd(): Promise<{ bin: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'rampart-vallumd-orig-'));
  const src = path.join(dir, 'src');
  // Copied without .git so its CMakeLists does not ask git for a version.
  await cp(ORIGINAL, src, { recursive: true, filter: (p) => !p.includes(`${path.sep}.git`) });
  await run('cmake', ['-DCMAKE_BUILD_TYPE=Release', '.'], { cwd: src, timeout: 120_000 });
  await run('make', ['-j2'], { cwd: src, timeout: 300_000 });
  return { bin: path.join(src, 'vallumd'), dir };
}

/** A private Mosquitto inside one namespace, with its verbose log kept for waiting on events. */
export class Broker {
  private child: ChildProcess | undefined;
  private log = '';
  private waiters: Array<() => void> = [];

  constructor(
    readonly host: Host,
    readonly dir: string,
    readonly port = 1883,
  ) {}

  async start(): Promise<void> {
    const conf = path.join(this.dir, 'mosquitto.conf');
    await writeFile(
      conf,
      `listener ${this.port} ${this.host.v4}\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type all\n`,
    );
    this.child = this.host.spawn('mosquitto', ['-v', '-c', conf]);
    const onData = (d: Buffer) => {
      this.log += d.toString();
      for (const w of this.waiters.splice(0)) w();
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    await this.until((l) => l.includes(`Opening ipv4 listen socket on port ${this.port}`));
  }

  /** Resolves when the broker's log satisfies `test` (rejects after `ms`). */
  until(test: (log: string) => boolean, ms = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`broker log never matched; log tail:\n${this.log.slice(-2000)}`)),
        ms,
      );
      const check = () => {
        if (test(this.log)) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** Everything logged so far; `mark()` returns an offset to look after. */
  text(from = 0): string {
    return this.log.slice(from);
  }

  mark(): number {
    return this.log.length;
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await gone;
  }

  /** `mosquitto_pub -q 2` of one message (payload from a file, so binary and empty ones work). */
  async publish(topic: string, payload: Buffer, extra: string[] = []): Promise<void> {
    const args = ['-h', this.host.v4, '-p', String(this.port), '-q', '2', '-t', topic, ...extra];
    if (payload.length === 0) args.push('-n');
    else {
      const f = path.join(this.dir, 'payload');
      await writeFile(f, payload);
      args.push('-f', f);
    }
    await this.host.exec('mosquitto_pub', args);
  }
}

/** A child process whose output is collected, stopped by SIGTERM (or SIGKILL) on request. */
export function daemon(
  host: Host,
  cmd: string,
  args: string[],
): {
  child: ChildProcess;
  output: () => string;
  /** Resolves when the output after offset `from` matches `re`. */
  until: (re: RegExp, from?: number) => Promise<void>;
  alive: () => boolean;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
} {
  const child = host.spawn(cmd, args);
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return {
    child,
    output: () => out,
    until: (re, from = 0) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`never logged ${re}; output:\n${out.slice(-2000)}`)),
          30_000,
        );
        const check = () => {
          if (re.test(out.slice(from))) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      }),
    alive: () => child.exitCode === null && child.signalCode === null,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      // `ip netns exec` passes the signal on: it execs the command.
      child.kill(signal);
      await gone;
    },
  };
}

/** Members of an ipset as `ipset save` prints them, sorted; `timeout` says whether one is set. */
export async function members(host: Host, set: string): Promise<string[]> {
  const out = await host.exec('ipset', ['save', set]);
  return out
    .split('\n')
    .filter((l) => l.startsWith('add '))
    .map((l) => l.split(' ')[2]!)
    .sort();
}

export async function timeoutOf(host: Host, set: string, elem: string): Promise<number | undefined> {
  const out = await host.exec('ipset', ['save', set]);
  const line = out.split('\n').find((l) => l.startsWith(`add ${set} ${elem} `) || l === `add ${set} ${elem}`);
  const m = line ? / timeout (\d+)/.exec(line) : null;
  return m ? Number(m[1]) : undefined;
}

/**
 * Waits until `cond` holds, checking every 50 ms: the original vallumd exposes no event for
 * having applied a message (it logs to syslog), so its kernel set is the only thing to watch.
 */
export async function eventually(cond: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function cleanupDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}

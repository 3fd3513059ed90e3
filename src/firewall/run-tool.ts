import { spawn } from 'node:child_process';

/** How a backend runs its tools: an optional prefix such as `['ip', 'netns', 'exec', 'ns1']`. */
export interface ToolRunner {
  /** Prepended to every spawned command (namespaces, sudo wrappers); empty by default. */
  prefix?: string[];
  timeoutMs?: number;
}

export interface ToolResult {
  /** Exit code; null when the process was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when the program itself could not be started (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException;
  /** In-process `nft -f` only: the nf_tables generation just before and after the script. */
  gen?: { before: number; after: number };
  /** In-process `--generation` only: the nf_tables generation now. */
  generation?: number;
  /** In-process `--dump-set` only: the set's elements (see {@link SetDump}). */
  dump?: SetDump;
}

/**
 * A plain set's elements read over netlink: `keys` holds four 32-bit words per element (most
 * significant first; IPv4 in the first word), `left` the milliseconds each has left (-1: no
 * timeout). `partial`: the read stopped early on purpose (the set is bigger than asked for);
 * `interrupted`: the set changed while it was read; `absent`: no such set.
 */
export interface SetDump {
  status: 'ok' | 'partial' | 'interrupted' | 'absent';
  count: number;
  keys: Int32Array;
  left: Float64Array;
}

/**
 * Runs one tool to completion, feeding `input` on stdin. Never throws for a failing tool: callers
 * turn the result into an error that names their backend, set and element.
 */
export function runTool(
  cmd: string,
  args: string[],
  opts: ToolRunner & { input?: string | string[] } = {},
): Promise<ToolResult> {
  const prefix = opts.prefix ?? [];
  const argv = [...prefix, cmd, ...args];
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: null, stdout: '', stderr: '', spawnError: err as NodeJS.ErrnoException });
      return;
    }
    // Our own timer: spawn's `timeout` option keeps a timer alive after a failed spawn (ENOENT).
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: NodeJS.ErrnoException | undefined;
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = e;
    });
    // The tool may exit before reading all of stdin (bad syntax): that is its answer, not ours.
    child.stdin!.on('error', () => {});
    const input = opts.input ?? '';
    if (typeof input === 'string') child.stdin!.end(input);
    else void feed(child.stdin!, input);
    child.on('close', (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8');
      // `ip netns exec` reports a missing program as its own failure rather than ENOENT.
      if (!spawnError && prefix.length > 0 && /exec of ".*" failed: No such file or directory/.test(stderr)) {
        spawnError = Object.assign(new Error(stderr.trim()), { code: 'ENOENT' });
      }
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr, spawnError });
    });
  });
}

/**
 * Writes chunks one after another, waiting for the pipe to drain: the tool starts reading the
 * first lines while later ones are still being encoded, and no giant string is ever built.
 */
async function feed(stdin: NodeJS.WritableStream, chunks: string[]): Promise<void> {
  for (const chunk of chunks) {
    if (!stdin.write(chunk)) {
      const go = await new Promise<boolean>((resolve) => {
        const done = (ok: boolean) => () => {
          stdin.off('drain', onDrain);
          stdin.off('close', onClose);
          resolve(ok);
        };
        const onDrain = done(true);
        const onClose = done(false);
        stdin.on('drain', onDrain);
        stdin.on('close', onClose);
      });
      if (!go) return;
    }
  }
  stdin.end();
}

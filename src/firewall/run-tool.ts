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
}

/**
 * Runs one tool to completion, feeding `input` on stdin. Never throws for a failing tool: callers
 * turn the result into an error that names their backend, set and element.
 */
export function runTool(
  cmd: string,
  args: string[],
  opts: ToolRunner & { input?: string } = {},
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
    child.stdin!.end(opts.input ?? '');
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

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { INLINE_CHARS, InlineKernel, isCommit, scriptChars } from './inline-kernel.js';
import { KERNEL_WORKER_SOURCE } from './kernel-worker-source.js';
import { runTool, type ToolResult, type ToolRunner } from './run-tool.js';

/** How a backend reaches the kernel: `library` in-process, `spawn` the program per call. */
export type DriverKind = 'library' | 'spawn';
/** The `firewall.driver` key: `auto` tries the library and falls back to spawning. */
export type DriverChoice = 'auto' | DriverKind;
export const DRIVER_CHOICES = ['auto', 'library', 'spawn'] as const;

/**
 * Runs a tool's command line (`nft -f -`, `ipset -exist restore`, `nft -j list set ...`) and
 * answers in the tool's own output formats, whichever way it is carried out.
 */
export interface ToolDriver {
  readonly kind: DriverKind;
  run(args: string[], input?: string | string[]): Promise<ToolResult>;
  close(): Promise<void>;
}

export type KernelTool = 'nft' | 'ipset';

const LIBRARIES: Record<KernelTool, string> = { nft: 'libnftables.so.1', ipset: 'libipset.so.13' };
const LIBRARIES_BY_KEY = { libnftables: LIBRARIES.nft, libipset: LIBRARIES.ipset };

/** Spawns the program for every call (the fallback, and what `driver: spawn` forces). */
export class SpawnDriver implements ToolDriver {
  readonly kind = 'spawn';
  constructor(
    private readonly program: string,
    private readonly runner: ToolRunner,
  ) {}
  run(args: string[], input: string | string[] = ''): Promise<ToolResult> {
    return runTool(this.program, args, { ...this.runner, input });
  }
  async close(): Promise<void> {}
}

/** Script text is handed to the worker in slices of about this many characters. */
const SLICE_CHARS = 1 << 20;

/**
 * Calls libnftables or libipset in-process: a small commit (a single ban, up to about 150 elements)
 * synchronously on the calling thread with its own context, everything else in a worker thread
 * with another, so a million-element batch runs there while the event loop keeps serving
 * detection and the bus. Calls run one at a time, in the order they were made, whichever thread
 * runs them.
 */
export class LibraryDriver implements ToolDriver {
  readonly kind = 'library';
  private next = 0;
  private readonly waiting = new Map<number, (r: ToolResult) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private dead: string | undefined;
  /** Calls queued or running (on either thread); 0 lets a small commit run at once. */
  private inFlight = 0;
  /** Calls run on the calling thread and in the worker (tests, doctor). */
  readonly calls = { inline: 0, worker: 0 };

  private constructor(
    private readonly worker: Worker,
    private readonly tool: KernelTool,
    /** The main-thread context; absent when it could not be loaded here (the worker does all). */
    private inline: InlineKernel | undefined,
  ) {
    worker.on('message', (m: ToolResult & { id?: number; error?: string }) => {
      if (m.id === undefined) return;
      const done = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      done?.(m.error ? { code: null, stdout: '', stderr: '', spawnError: libraryError(tool, m.error) } : m);
    });
    const die = (why: string) => {
      this.dead ??= why;
      for (const done of this.waiting.values())
        done({ code: null, stdout: '', stderr: '', spawnError: libraryError(tool, why) });
      this.waiting.clear();
    };
    worker.on('error', (err) => die(err.message));
    worker.on('exit', (code) => die(`kernel worker exited (${code})`));
    worker.unref();
  }

  /** Starts the worker (in `netns` when given); rejects when the library cannot be loaded there. */
  static async open(tool: KernelTool, netns?: string): Promise<LibraryDriver> {
    const require = createRequire(import.meta.url);
    let koffi: string;
    try {
      koffi = require.resolve('koffi');
    } catch (err) {
      throw libraryError(tool, `the koffi package is not installed (${(err as Error).message})`);
    }
    const worker = new Worker(KERNEL_WORKER_SOURCE, {
      eval: true,
      workerData: { koffi, tool, netns, ...LIBRARIES_BY_KEY },
      // The worker never needs the parent's flags (a test runner's loaders, inspectors).
      execArgv: [],
      stdout: false,
      stderr: false,
    });
    const ready = await new Promise<{ ready: boolean; error?: string }>((resolve) => {
      worker.once('message', resolve);
      worker.once('error', (err) => resolve({ ready: false, error: err.message }));
      worker.once('exit', (code) => resolve({ ready: false, error: `kernel worker exited (${code})` }));
    });
    if (!ready.ready) {
      await worker.terminate().catch(() => {});
      throw libraryError(tool, ready.error ?? 'unknown failure');
    }
    let inline: InlineKernel | undefined;
    try {
      inline = InlineKernel.open(tool, koffi, LIBRARIES_BY_KEY, netns);
    } catch {
      // Only the thread hop is lost: every call goes through the worker, which did load.
      inline = undefined;
    }
    return new LibraryDriver(worker, tool, inline);
  }

  run(args: string[], input: string | string[] = ''): Promise<ToolResult> {
    const here = this.inline !== undefined && isCommit(this.tool, args) && scriptChars(input) <= INLINE_CHARS;
    // Nothing ahead of it: a small commit goes to the kernel now, in this call.
    if (here && this.inFlight === 0) return Promise.resolve(this.runInline(args, input));
    // Calls are strictly one after another: their slices must not interleave, and a commit must
    // not overtake a rebuild or listing made before it.
    this.inFlight++;
    const next = this.queue.then(() => (here ? this.runInline(args, input) : this.runNow(args, input)));
    const done = () => {
      this.inFlight--;
    };
    this.queue = next.then(done, done);
    return next;
  }

  private runInline(args: string[], input: string | string[]): ToolResult {
    if (this.dead)
      return { code: null, stdout: '', stderr: '', spawnError: libraryError(this.tool, this.dead) };
    try {
      if (!this.inline) throw new Error('closed');
      this.calls.inline++;
      return this.inline.run(args, input);
    } catch (err) {
      return {
        code: null,
        stdout: '',
        stderr: '',
        spawnError: libraryError(this.tool, (err as Error).message),
      };
    }
  }

  private async runNow(args: string[], input: string | string[]): Promise<ToolResult> {
    if (this.dead)
      return { code: null, stdout: '', stderr: '', spawnError: libraryError(this.tool, this.dead) };
    const id = ++this.next;
    this.calls.worker++;
    const chunks = typeof input === 'string' ? [input] : input;
    const answer = new Promise<ToolResult>((resolve) => this.waiting.set(id, resolve));
    this.worker.ref();
    // Big scripts go over in slices, with a turn of the event loop between them: copying 30 MB
    // into the worker in one message would block this thread for tens of milliseconds.
    let slice: string[] = [];
    let size = 0;
    for (const chunk of chunks) {
      slice.push(chunk);
      size += chunk.length;
      if (size >= SLICE_CHARS) {
        this.worker.postMessage({ id, append: slice });
        slice = [];
        size = 0;
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    // A small script (a single ban) travels in the one message that runs it.
    this.worker.postMessage({ id, tool: this.tool, args, input: slice.length > 0 ? slice : undefined });
    return answer;
  }

  async close(): Promise<void> {
    this.dead ??= 'closed';
    // Inline calls are synchronous, so none is running now; queued ones see `dead` and answer so.
    const inline = this.inline;
    this.inline = undefined;
    try {
      inline?.close();
    } catch {
      // Freeing a context at exit: nothing to do about a failure.
    }
    await this.worker.terminate().catch(() => {});
  }
}

function libraryError(tool: KernelTool, why: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${LIBRARIES[tool]}: ${why}`), { code: 'ELIBRARY' });
}

/**
 * The network namespace a command prefix runs in, as a path for setns: `[ip, netns, exec, NAME]`
 * or `[nsenter, --net=PATH]`. Other prefixes (sudo wrappers, setpriv) cannot be followed by a
 * library call.
 */
export function prefixNetns(prefix: string[] | undefined): { ok: boolean; netns?: string } {
  if (!prefix || prefix.length === 0) return { ok: true };
  if (prefix.length === 4 && prefix[0] === 'ip' && prefix[1] === 'netns' && prefix[2] === 'exec')
    return { ok: true, netns: `/run/netns/${prefix[3]}` };
  if (prefix.length === 2 && prefix[0] === 'nsenter' && prefix[1]!.startsWith('--net='))
    return { ok: true, netns: prefix[1]!.slice('--net='.length) };
  return { ok: false };
}

export interface OpenDriverOptions extends ToolRunner {
  tool: KernelTool;
  program: string;
  choice?: DriverChoice;
  /** Which backend asks (for the log line and errors). */
  backend: string;
  logger?: Logger;
}

/**
 * The driver a backend should use: the library unless told to spawn, or unless it cannot be
 * loaded (then one log line says why and the program is spawned instead). `library` makes a
 * missing library an error rather than a fallback.
 */
export async function openDriver(o: OpenDriverOptions): Promise<ToolDriver> {
  const choice = o.choice ?? 'auto';
  const spawned = new SpawnDriver(o.program, { prefix: o.prefix, timeoutMs: o.timeoutMs });
  if (choice === 'spawn') return spawned;
  const where = prefixNetns(o.prefix);
  let why: string;
  if (!where.ok)
    why = `the command prefix "${o.prefix!.join(' ')}" can only be followed by a spawned program`;
  else {
    try {
      return await LibraryDriver.open(o.tool, where.netns);
    } catch (err) {
      why = (err as Error).message;
    }
  }
  if (choice === 'library') {
    throw new RampartError(
      'E_FIREWALL',
      `${o.backend}: firewall.driver is "library" but ${why}; install ${LIBRARIES[o.tool]} or set firewall.driver to auto or spawn`,
    );
  }
  (o.logger ?? silentLogger()).warn(
    { backend: o.backend, driver: 'spawn', reason: why },
    `${o.backend}: in-process ${LIBRARIES[o.tool]} unavailable; spawning "${o.program}" for every commit`,
  );
  return spawned;
}

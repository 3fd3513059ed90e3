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
 * What the kernel queued in answer to a netlink batch, and the generation right after it (`before`
 * too where the driver read it; the element batch path reads only `after`, ADR 0066).
 */
export interface NetlinkAnswer {
  reply: Buffer;
  gen?: { before?: number; after: number };
}

/**
 * Runs a tool's command line (`nft -f -`, `ipset -exist restore`, `nft -j list set ...`) and
 * answers in the tool's own output formats, whichever way it is carried out.
 */
export interface ToolDriver {
  readonly kind: DriverKind;
  run(args: string[], input?: string | string[], opts?: RunOptions): Promise<ToolResult>;
  /**
   * Sends an encoded nf_tables netlink batch now, on the calling thread, and returns the kernel's
   * answer; undefined when that cannot happen at once (no in-process library, calls queued ahead,
   * a failure): the caller then takes the script path. `acks`: how many messages of the batch ask
   * for an ack; once that many clean acks are in, nothing else is read. `generation` false: not
   * an nf_tables transaction (ipset's messages), so the generation is not read after it.
   */
  netlink?(bytes: Buffer, acks: number, generation?: boolean): NetlinkAnswer | undefined;
  /**
   * The same from the kernel worker thread, after every call queued before it: for big batches
   * the kernel may hold for a long time within the send (ipset grows a hash there, 100 ms and
   * more at a million elements), which must not stall the calling thread. Undefined when it could
   * not be sent.
   */
  netlinkOffThread?(bytes: Buffer, acks: number, generation?: boolean): Promise<NetlinkAnswer | undefined>;
  close(): Promise<void>;
}

export interface RunOptions {
  /**
   * The caller knows the answer is small (a range set listed at start or by a reconcile of few
   * ranges, a scan's probe read a few netlink messages deep): it runs on the calling
   * thread like a small commit, and no kernel worker is started for it. An idle agent then
   * starts none at all (≈ 1 MB of RSS and ≈ 0.3 s of CPU, ADR 0051).
   */
  small?: boolean;
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
 * The kernel worker is stopped after this long without a call. It is a second V8 isolate with
 * its own library contexts (≈ 11 MB resident idle, far more after a million-element batch), and
 * an agent mostly runs small commits, which never need it (ADR 0039).
 */
export const WORKER_IDLE_MS = 2_000;

/** The longest a kernel worker may take to load its library (it takes milliseconds). */
const WORKER_START_MS = 15_000;

interface WorkerStart {
  koffi: string;
  tool: KernelTool;
  netns?: string;
}

/** Starts a kernel worker; resolves once its library is loaded, rejects with why it could not be. */
async function startWorker(w: WorkerStart): Promise<Worker> {
  const worker = new Worker(KERNEL_WORKER_SOURCE, {
    eval: true,
    workerData: { ...w, ...LIBRARIES_BY_KEY },
    // The worker never needs the parent's flags (a test runner's loaders, inspectors).
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  type Ready = { ready: boolean; error?: string };
  let onMessage!: (m: Ready) => void;
  let onError!: (err: Error) => void;
  let onExit!: (code: number) => void;
  let late: NodeJS.Timeout | undefined;
  const ready = await new Promise<Ready>((resolve) => {
    onMessage = resolve;
    onError = (err) => resolve({ ready: false, error: err.message });
    onExit = (code) => resolve({ ready: false, error: `kernel worker exited (${code})` });
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    // A worker stuck loading its library would hold every queued call behind it for ever, with
    // nothing logged: this call fails instead, and the commit is retried with a new worker.
    late = setTimeout(
      () => resolve({ ready: false, error: `kernel worker not ready after ${WORKER_START_MS} ms` }),
      WORKER_START_MS,
    );
  });
  clearTimeout(late);
  worker.off('message', onMessage).off('error', onError).off('exit', onExit);
  if (!ready.ready) {
    await worker.terminate().catch(() => {});
    throw new Error(ready.error ?? 'unknown failure');
  }
  return worker;
}

/**
 * Calls libnftables or libipset in-process: a small commit (a single ban, up to about 150 elements)
 * synchronously on the calling thread with its own context, everything else in a worker thread
 * with another, so a million-element batch runs there while the event loop keeps serving
 * detection and the bus. Calls run one at a time, in the order they were made, whichever thread
 * runs them. The worker is started by the first call that needs it and stopped after
 * {@link WORKER_IDLE_MS} without one.
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
  readonly calls = { inline: 0, worker: 0, netlink: 0 };
  /** Kernel workers started so far (tests). */
  workersStarted = 0;
  private worker: Worker | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly start: WorkerStart,
    /** The main-thread context; absent when it could not be loaded here (the worker does all). */
    private inline: InlineKernel | undefined,
    worker: Worker | undefined,
    private readonly idleMs: number,
  ) {
    if (worker) this.adopt(worker);
  }

  /**
   * Loads the library (in `netns` when given) on this thread; rejects when it cannot be loaded.
   * When only a worker thread can load it, the worker is started now to find out.
   */
  static async open(
    tool: KernelTool,
    netns?: string,
    opts: { idleMs?: number } = {},
  ): Promise<LibraryDriver> {
    const require = createRequire(import.meta.url);
    let koffi: string;
    try {
      koffi = require.resolve('koffi');
    } catch (err) {
      throw libraryError(tool, `the koffi package is not installed (${(err as Error).message})`);
    }
    const start = { koffi, tool, ...(netns ? { netns } : {}) };
    const idleMs = opts.idleMs ?? WORKER_IDLE_MS;
    let inline: InlineKernel | undefined;
    let inlineError: Error | undefined;
    try {
      inline = InlineKernel.open(tool, koffi, LIBRARIES_BY_KEY, netns);
    } catch (err) {
      inlineError = err as Error;
    }
    if (inline) return new LibraryDriver(start, inline, undefined, idleMs);
    // Only the thread hop would be lost if the worker loads it: every call then goes there.
    let worker: Worker;
    try {
      worker = await startWorker(start);
    } catch (err) {
      throw libraryError(tool, (err as Error).message || (inlineError?.message ?? 'unknown failure'));
    }
    const d = new LibraryDriver(start, undefined, worker, idleMs);
    d.workersStarted++;
    d.scheduleIdleStop();
    return d;
  }

  /** Whether a kernel worker thread is running now (tests). */
  get workerRunning(): boolean {
    return this.worker !== undefined;
  }

  run(args: string[], input: string | string[] = '', opts: RunOptions = {}): Promise<ToolResult> {
    // A generation read is one netlink round trip, a probe read a few, and a listing its caller
    // knows is small: the calling thread too. An idle agent's start and reconcile then never start
    // the worker (a second isolate: ~70 ms of CPU and ~10 MB each time).
    const here =
      this.inline !== undefined &&
      ((isCommit(this.start.tool, args) && scriptChars(input) <= INLINE_CHARS) ||
        args[0] === '--generation' ||
        opts.small === true);
    // Nothing ahead of it: a small commit goes to the kernel now, in this call.
    if (here && this.inFlight === 0) return Promise.resolve(this.runInline(args, input));
    return this.queued(() => (here ? this.runInline(args, input) : this.runNow(args, input)));
  }

  /**
   * Runs `call` after every call queued before it. Calls are strictly one after another: their
   * slices must not interleave, and a commit must not overtake a rebuild or listing made before it.
   */
  private queued<T>(call: () => T | Promise<T>): Promise<T> {
    this.inFlight++;
    clearTimeout(this.idleTimer);
    const next = this.queue.then(call);
    const done = () => {
      this.inFlight--;
      this.scheduleIdleStop();
    };
    this.queue = next.then(done, done);
    return next;
  }

  netlinkOffThread(bytes: Buffer, acks: number, generation = true): Promise<NetlinkAnswer | undefined> {
    return this.queued(async () => {
      const worker = await this.workerForCall();
      if (typeof worker === 'string') return undefined;
      const id = ++this.next;
      this.calls.worker++;
      const answer = new Promise<ToolResult & { reply?: Uint8Array; gen?: NetlinkAnswer['gen'] }>((resolve) =>
        this.waiting.set(id, resolve),
      );
      worker.ref();
      // A copy the worker owns: the caller may reuse its buffer for the next batch meanwhile.
      const copy = new Uint8Array(bytes);
      worker.postMessage({ id, netlink: copy, acks, generation }, [copy.buffer]);
      const m = await answer;
      if (m.spawnError || !m.reply) return undefined;
      const reply = Buffer.from(m.reply.buffer, m.reply.byteOffset, m.reply.byteLength);
      return m.gen ? { reply, gen: m.gen } : { reply };
    });
  }

  netlink(bytes: Buffer, acks: number, generation = true): NetlinkAnswer | undefined {
    // Only with nothing ahead of it: a batch must not overtake a queued commit or listing.
    if (this.dead || !this.inline || this.inFlight > 0) return undefined;
    try {
      const answer = this.inline.netlink(bytes, acks, generation);
      this.calls.netlink++;
      return answer;
    } catch {
      return undefined;
    }
  }

  private runInline(args: string[], input: string | string[]): ToolResult {
    if (this.dead)
      return { code: null, stdout: '', stderr: '', spawnError: libraryError(this.start.tool, this.dead) };
    try {
      if (!this.inline) throw new Error('closed');
      this.calls.inline++;
      return this.inline.run(args, input);
    } catch (err) {
      return {
        code: null,
        stdout: '',
        stderr: '',
        spawnError: libraryError(this.start.tool, (err as Error).message),
      };
    }
  }

  private async runNow(args: string[], input: string | string[]): Promise<ToolResult> {
    const failed = (why: string): ToolResult => ({
      code: null,
      stdout: '',
      stderr: '',
      spawnError: libraryError(this.start.tool, why),
    });
    const worker = await this.workerForCall();
    if (typeof worker === 'string') return failed(worker);
    const id = ++this.next;
    this.calls.worker++;
    const chunks = typeof input === 'string' ? [input] : input;
    const answer = new Promise<ToolResult>((resolve) => this.waiting.set(id, resolve));
    worker.ref();
    // Big scripts go over in slices, with a turn of the event loop between them: copying 30 MB
    // into the worker in one message would block this thread for tens of milliseconds.
    let slice: string[] = [];
    let size = 0;
    for (const chunk of chunks) {
      slice.push(chunk);
      size += chunk.length;
      if (size >= SLICE_CHARS) {
        worker.postMessage({ id, append: slice });
        slice = [];
        size = 0;
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    // A small script (a single ban) travels in the one message that runs it.
    worker.postMessage({ id, tool: this.start.tool, args, input: slice.length > 0 ? slice : undefined });
    // The worker trims the C heap after a big one before it answers (kernel-worker-source.ts).
    return answer;
  }

  /** The worker, started when there is none; or why it cannot serve this call. */
  private async workerForCall(): Promise<Worker | string> {
    if (this.dead) return this.dead;
    if (this.worker) return this.worker;
    // Calls run one at a time, so no other call is starting one meanwhile.
    let worker: Worker;
    try {
      worker = await startWorker(this.start);
    } catch (err) {
      // This call fails; the next one that needs the worker tries again.
      return (err as Error).message;
    }
    this.workersStarted++;
    if (this.dead) {
      await worker.terminate().catch(() => {});
      return this.dead;
    }
    this.adopt(worker);
    return worker;
  }

  /** Takes a started worker into service: its answers, and its death, are this driver's. */
  private adopt(worker: Worker): void {
    this.worker = worker;
    worker.on('message', (m: ToolResult & { id?: number; error?: string }) => {
      if (m.id === undefined) return;
      const done = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      done?.(
        m.error
          ? { code: null, stdout: '', stderr: '', spawnError: libraryError(this.start.tool, m.error) }
          : m,
      );
    });
    const die = (why: string) => {
      // A worker stopped for being idle is no longer this driver's: its exit is expected.
      if (this.worker !== worker) return;
      this.dead ??= why;
      for (const done of this.waiting.values())
        done({ code: null, stdout: '', stderr: '', spawnError: libraryError(this.start.tool, why) });
      this.waiting.clear();
    };
    worker.on('error', (err) => die(err.message));
    worker.on('exit', (code) => die(`kernel worker exited (${code})`));
    worker.unref();
  }

  private scheduleIdleStop(): void {
    clearTimeout(this.idleTimer);
    if (!this.worker || this.inFlight > 0 || this.dead) return;
    this.idleTimer = setTimeout(() => this.stopIdleWorker(), this.idleMs);
    this.idleTimer.unref();
  }

  /** Lets an idle worker free its library contexts and end; the next big call starts another. */
  private stopIdleWorker(): void {
    const worker = this.worker;
    if (!worker || this.inFlight > 0 || this.waiting.size > 0) return;
    this.worker = undefined;
    worker.postMessage({ stop: true });
    // Answered by its exit; a worker that does not go is ended.
    const kill = setTimeout(() => worker.terminate().catch(() => {}), 5_000);
    kill.unref();
    // It frees its contexts and trims the C heap itself before it ends.
    worker.once('exit', () => clearTimeout(kill));
  }

  async close(): Promise<void> {
    this.dead ??= 'closed';
    clearTimeout(this.idleTimer);
    // Inline calls are synchronous, so none is running now; queued ones see `dead` and answer so.
    const inline = this.inline;
    this.inline = undefined;
    try {
      inline?.close();
    } catch {
      // Freeing a context at exit: nothing to do about a failure.
    }
    // Its exit answers any call still waiting on it with the reason above.
    await this.worker?.terminate().catch(() => {});
    this.worker = undefined;
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

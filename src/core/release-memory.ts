import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let trim: (() => void) | null | undefined;

/**
 * Hands the C heap's free pages back to the kernel (glibc `malloc_trim`). Each thread that
 * allocates gets its own malloc arena, and glibc keeps what a thread freed in it after the thread
 * ends: the config check's thread left ≈ 15 MB resident in an idle agent (ADR 0039; the kernel
 * worker trims for itself, kernel-worker-source.ts). Called after such a thread ended; a no-op
 * where the call is not available (another C library, no koffi).
 */
export function releaseFreedMemory(): void {
  if (trim === undefined) {
    try {
      const koffi = createRequire(import.meta.url)('koffi') as {
        load(lib: string): { func(decl: string): (pad: number) => number };
      };
      const mallocTrim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)');
      trim = () => {
        mallocTrim(0);
      };
    } catch {
      trim = null;
    }
  }
  trim?.();
}

let gc: (() => void) | null | undefined;

/**
 * A full garbage collection now, then `releaseFreedMemory`. After a bulk load or a reconcile
 * that read a big set, V8 otherwise keeps the garbage of a million bans (staged changes, decoded
 * pages, set indexes) in an old generation it lets grow to several hundred MB before collecting
 * it (ADR 0035, 0043). Costs one mark-compact (tens of ms for a small live heap): call it after
 * large work, not per ban. `gc` is reached through V8's flag at run time (node's `--expose-gc`
 * cannot be given to every way rampart is started); a no-op where that fails.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      const global = globalThis as { gc?: () => void };
      if (typeof global.gc === 'function') gc = global.gc;
      else {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc') as () => void;
      }
    } catch {
      gc = null;
    }
  }
  gc?.();
  releaseFreedMemory();
}

/** Above this much live V8 heap, {@link releaseStartupMemory} does nothing. */
const STARTUP_RELEASE_MAX_HEAP = 32 * 1024 * 1024;

/**
 * V8's own low-memory collection, once start-up is over and after later work once the agent is
 * quiet (agent/idle-memory.ts, ADR 0056): what its memory reducer does by itself
 * only after about 8 s without a mark-compact and a low allocation rate, often later (ADR 0047).
 * Unlike {@link collectGarbage} it also shrinks the young generation: start-up grows both
 * semi-spaces to their cap (2 × 4 MiB, cli/node-flags.ts) and a plain `gc()` never shrinks them,
 * so an idle agent kept ≈ 7 MB of new space holding ≈ 0.2 MB (ADR 0051). Node 20 reaches that
 * collection (`Isolate::LowMemoryNotification`) from JavaScript only through the inspector's
 * `HeapProfiler.collectGarbage`, in this process's own session.
 *
 * Costs a few mark-compacts on the calling thread (≈ 50-80 ms of CPU for an idle agent's ≈ 10 MB
 * heap), so it does nothing once the heap is larger (a restore that held many bans). The young
 * generation grows back on its own when traffic survives scavenges. Resolves to whether it ran;
 * false where node has no inspector.
 */
export async function releaseStartupMemory(): Promise<boolean> {
  if (process.memoryUsage().heapUsed > STARTUP_RELEASE_MAX_HEAP) return false;
  let inspector: typeof import('node:inspector');
  try {
    inspector = await import('node:inspector');
  } catch {
    return false;
  }
  const session = new inspector.Session();
  try {
    session.connect();
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    session.post('HeapProfiler.collectGarbage', (err) => {
      // Disconnecting inside the protocol's callback hangs node 20's main thread: after it.
      setImmediate(() => {
        session.disconnect();
        // What the collection freed outside V8's heap (backing stores, compile memory) goes
        // back to the kernel too: ≈ 0.8 MB of an idle agent.
        releaseFreedMemory();
        resolve(!err);
      });
    });
  });
}

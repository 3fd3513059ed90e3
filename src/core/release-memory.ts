import { createRequire } from 'node:module';

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

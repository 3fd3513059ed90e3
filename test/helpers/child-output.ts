import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** Everything a child printed, and its exit code, once it has closed its streams. */
export function childOutput(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    child.on('close', (code) => done({ code, out, err }));
  });
}

/** What `p` resolves to, or `late` if it has not within `ms` (a process that should have ended). */
export async function within<T, L>(p: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<L>((r) => {
      timer = setTimeout(() => r(late), ms);
    });
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

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

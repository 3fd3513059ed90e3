import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * One long-lived `nft -i` process for small batches, so a single ban costs a pipe write instead
 * of a process start (the floor of `nft -f -` is the spawn: ~20 ms on a busy machine). nft's
 * interactive mode runs each line as its own transaction and prints nothing on success, so every
 * script is followed by a command that must fail (deleting a table that cannot exist) and whose
 * error, echoed on stderr, marks the end. Any error before it means the script failed; callers
 * then replay it through `nft -f -`, which reports the exact element.
 */
export class NftSession {
  private child: ChildProcess | undefined;
  private stderr = '';
  private pending: { marker: string; resolve: (ok: boolean) => void } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly nft: string,
    private readonly prefix: string[] = [],
    private readonly timeoutMs = 5000,
  ) {}

  /** True when every line applied; false on any error, a dead process or a timeout. */
  run(script: string): Promise<boolean> {
    const next = this.queue.then(() => this.runNow(script));
    this.queue = next.catch(() => {});
    return next;
  }

  private start(): ChildProcess {
    const argv = [...this.prefix, this.nft, '-i'];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    child.on('error', () => this.fail(child));
    child.on('exit', () => this.fail(child));
    child.stdin!.on('error', () => this.fail(child));
    child.stdout!.on('data', () => {});
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString('utf8');
      const p = this.pending;
      if (!p) return;
      const at = this.stderr.indexOf(p.marker);
      if (at < 0) return;
      // Our marker's own error is the last "Error:" before the marker text.
      const before = this.stderr.slice(0, this.stderr.lastIndexOf('Error:', at));
      this.stderr = '';
      this.pending = undefined;
      p.resolve(!before.includes('Error'));
    });
    // An idle session must not keep the process alive; a pending run holds its own timer.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr])
      (s as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  private fail(child: ChildProcess): void {
    if (this.child !== child) return;
    this.child = undefined;
    const p = this.pending;
    this.pending = undefined;
    p?.resolve(false);
  }

  private runNow(script: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.child ??= this.start();
    const child = this.child;
    const marker = `rampart_done_${randomBytes(6).toString('hex')}`;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        // Stuck: drop this process; the next run starts a fresh one.
        child.kill('SIGKILL');
        this.fail(child);
      }, this.timeoutMs);
      this.stderr = '';
      this.pending = {
        marker,
        resolve: (ok) => {
          clearTimeout(timer);
          resolve(ok);
        },
      };
      // One command per line: newlines inside the script are already line breaks.
      child.stdin!.write(`${script.trimEnd()}\ndelete table inet ${marker}\n`);
    });
  }

  close(): void {
    this.closed = true;
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
    child?.kill();
  }
}

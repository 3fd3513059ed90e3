import { writeSync } from 'node:fs';

/** A shared word to sleep on while a non-blocking descriptor is full. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `text` to a file descriptor before returning, as pino's synchronous destination
 * did: a line logged just before the process exits is not lost. A full pipe (EAGAIN, when the
 * reader is slow and the descriptor is non-blocking) is waited out for up to a second; any other
 * failure (the reader went away: EPIPE) drops the line, because logging must never throw into
 * the code that logs.
 */
export function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  let waits = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 1000) return;
      Atomics.wait(PAUSE, 0, 0, 1);
    }
  }
}

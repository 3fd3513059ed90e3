import { isAscii } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import { RampartError } from '../core/errors.js';
import { fsReason, isPathMistake } from '../core/fs-error.js';

/** Read size: a few syscalls per megabyte, and a buffer small enough to stay in cache. */
const CHUNK = 1 << 16;
/**
 * A line longer than this is delivered truncated (detection counts it as oversized) and the rest
 * up to its newline is dropped: never re-read as the start of a new line, which would let the
 * writer of a huge line forge a line of their choosing.
 */
const MAX_LINE = 4 << 20;
/** A literal's next position: not searched since the buffer changed; none in the rest of it. */
const UNKNOWN = -2;
const NONE = -1;

export interface LineFilter {
  /**
   * A line containing none of these (as UTF-8 bytes) is not decoded: `onSkip` is called instead
   * of `onLine`. For detection, the rules' prefilter literals: most lines of a busy log are
   * rejected while still bytes.
   */
  literals: string[];
  onSkip: () => void;
  /** Lines longer than this many bytes are always delivered (detection counts them as oversized). */
  deliverOver: number;
}

/**
 * Calls `onLine` for every line of a file (`-` = standard input), in order. Bytes are read into
 * one reused buffer and only the lines delivered are decoded, each on its own (a newline byte is
 * never part of a UTF-8 sequence, so a line is always whole): as UTF-8 with replacement
 * characters, so invalid UTF-8 or binary garbage can neither throw nor split a line, or as
 * Latin-1 when the read is ASCII (the same text, several times cheaper). A trailing `\r` is
 * dropped; a last line without `\n` is still delivered.
 */
export async function forEachLine(
  path: string,
  onLine: (text: string) => void,
  filter?: LineFilter,
): Promise<void> {
  const needles = filter?.literals.map((l) => Buffer.from(l, 'utf8')) ?? [];
  // Where each literal occurs next in the buffer (-1: not in the rest of it), so each line costs
  // a comparison per literal and the searches run once per occurrence, not once per line.
  const next = new Array<number>(needles.length).fill(UNKNOWN);
  let buf = Buffer.allocUnsafe(CHUNK);
  let held = 0;
  let skipping = false;

  const deliver = (s: number, e: number, ascii: boolean) => {
    if (e > s && buf[e - 1] === 13) e--;
    onLine(buf.toString(ascii ? 'latin1' : 'utf8', s, e));
  };
  const candidate = (s: number, e: number): boolean => {
    for (let k = 0; k < needles.length; k++) {
      let at = next[k]!;
      if (at < s && at !== NONE) at = next[k] = buf.indexOf(needles[k]!, s);
      if (at !== NONE && at + needles[k]!.length <= e) return true;
    }
    return e - s > filter!.deliverOver;
  };
  /** Delivers the complete lines in buf[0, end); returns where the incomplete tail starts. */
  const lines = (end: number): number => {
    const ascii = isAscii(buf.subarray(0, end));
    next.fill(UNKNOWN);
    let s = 0;
    for (let nl = buf.indexOf(10, 0); nl >= 0 && nl < end; nl = buf.indexOf(10, s)) {
      if (skipping) skipping = false;
      else if (filter === undefined || candidate(s, nl)) deliver(s, nl, ascii);
      else filter.onSkip();
      s = nl + 1;
    }
    return s;
  };

  try {
    for await (const n of reads(path, () => buf.subarray(held))) {
      const end = held + n;
      let s = lines(end);
      if (s === 0 && end === buf.length) {
        // No newline in a full buffer: grow it, or cut the line there.
        if (buf.length < MAX_LINE) {
          const bigger = Buffer.allocUnsafe(buf.length * 2);
          buf.copy(bigger, 0, 0, end);
          buf = bigger;
        } else {
          if (!skipping) deliver(0, end, isAscii(buf.subarray(0, end)));
          skipping = true;
          s = end;
        }
      }
      held = end - s;
      if (s > 0 && held > 0) buf.copy(buf, 0, s, end);
    }
  } catch (err) {
    // A wrong path on the command line is the operator's input (exit 2); a read failing midway is not.
    const code = isPathMistake(err) ? 'E_USAGE' : 'E_SOURCE';
    throw new RampartError(code, `cannot read ${path === '-' ? 'standard input' : path}: ${fsReason(err)}`, {
      cause: err,
    });
  }
  if (held > 0 && !skipping) {
    next.fill(UNKNOWN);
    if (filter === undefined || candidate(0, held)) deliver(0, held, isAscii(buf.subarray(0, held)));
    else filter.onSkip();
  }
}

/** Fills `room()` from the file or standard input; yields the byte count of each read. */
async function* reads(path: string, room: () => Buffer): AsyncGenerator<number> {
  if (path === '-') {
    let pending: Buffer | null = null;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      pending = chunk;
      while (pending !== null) {
        const into = room();
        const n = Math.min(into.length, pending.length);
        pending.copy(into, 0, 0, n);
        pending = n < pending.length ? pending.subarray(n) : null;
        yield n;
      }
    }
    return;
  }
  // Synchronous reads: a replay has nothing else to do meanwhile, and an asynchronous read is a
  // hop to the thread pool per chunk (which, pinned to one core, waits for this thread).
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const into = room();
      const n = readSync(fd, into, 0, into.length, null);
      if (n === 0) return;
      yield n;
    }
  } finally {
    closeSync(fd);
  }
}

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

/** `onLine`'s mask when no filter applies or the line is not tested: every literal may be there. */
export const ALL_LITERALS = -1;
/** Literals a mask can name one by one; with more, every line is delivered with ALL_LITERALS. */
const MASK_BITS = 31;

/**
 * Calls `onLine` for every line of a file (`-` = standard input), in order. Bytes are read into
 * one reused buffer. A read that is all ASCII (nearly every log) becomes one Latin-1 string and
 * its lines are slices of it: no native call nor copy per line. Otherwise only the lines
 * delivered are decoded, each on its own (a newline byte is never part of a UTF-8 sequence, so a
 * line is always whole), as UTF-8 with replacement characters, so invalid UTF-8 or binary
 * garbage can neither throw nor split a line. A trailing `\r` is dropped; a last line without
 * `\n` is still delivered. With a filter, `onLine` also gets the bits (1 << index in
 * `filter.literals`) of the literals the line holds, so each rule can skip a line without
 * searching it again.
 */
export function forEachLine(
  path: string,
  onLine: (text: string, literals: number) => void,
  filter?: LineFilter,
): Promise<void> {
  return forEachLineIn(
    path,
    (chunk, start, end, literals) => onLine(chunk.slice(start, end), literals),
    filter,
  );
}

/**
 * `forEachLine` without making each line a string of its own: the line is `chunk[start, end)`,
 * where `chunk` is a whole ASCII read (or, for other reads, the decoded line alone, from 0). A
 * replay reads the timestamp off the chunk and slices once, after it (docs/adr/0055).
 */
export async function forEachLineIn(
  path: string,
  onLine: (chunk: string, start: number, end: number, literals: number) => void,
  filter?: LineFilter,
  /**
   * Called after each read's lines; a promise it returns holds the next read until it settles.
   * Reads are synchronous, so without it the event loop never runs during a file: what the
   * caller writes to a full pipe would queue in memory to the end (`rampart check`'s output).
   */
  pause?: () => Promise<void> | undefined,
): Promise<void> {
  const texts = filter?.literals ?? [];
  const needles = texts.map((l) => Buffer.from(l, 'utf8'));
  const masks = texts.length <= MASK_BITS;
  const deliverOver = filter?.deliverOver ?? 0;
  // Where each literal occurs next in the buffer or chunk string (-1: not in the rest of it), so
  // each line costs a comparison per literal and the searches run once per occurrence, not once
  // per line.
  const next = new Array<number>(needles.length).fill(UNKNOWN);
  // In an ASCII chunk each literal is found by its rarest piece (chosen from the first read),
  // then checked whole (see `findLiteral`).
  let pieces: Piece[] | null = null;
  let buf = Buffer.allocUnsafe(CHUNK);
  let held = 0;
  let skipping = false;

  /** The filter's verdict on buf[s, e) (or chunk[s, e)): 0 = skip, else the literal mask. */
  const verdict = (s: number, e: number, chunk: string | null): number => {
    if (filter === undefined) return ALL_LITERALS;
    let mask = 0;
    for (let k = 0; k < needles.length; k++) {
      let at = next[k]!;
      if (at < s && at !== NONE)
        at = next[k] =
          chunk === null ? buf.indexOf(needles[k]!, s) : findLiteral(chunk, texts[k]!, pieces![k]!, s);
      if (at !== NONE && at + (chunk === null ? needles[k]!.length : texts[k]!.length) <= e) {
        if (!masks) return ALL_LITERALS;
        mask |= 1 << k;
      }
    }
    return e - s > deliverOver ? ALL_LITERALS : mask;
  };
  const deliverBytes = (s: number, e: number) => {
    const mask = verdict(s, e, null);
    if (mask === 0) return filter!.onSkip();
    if (e > s && buf[e - 1] === 13) e--;
    const text = buf.toString('utf8', s, e);
    onLine(text, 0, text.length, mask);
  };
  /** Delivers the complete lines in buf[0, end); returns where the incomplete tail starts. */
  const lines = (end: number): number => {
    next.fill(UNKNOWN);
    let s = 0;
    if (isAscii(buf.subarray(0, end))) {
      // Offsets in the Latin-1 string are byte offsets: one character per byte.
      const chunk = buf.toString('latin1', 0, end);
      pieces ??= texts.map((t) => rarestPiece(t, chunk));
      for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', s)) {
        if (skipping) skipping = false;
        else {
          const mask = verdict(s, nl, chunk);
          if (mask === 0) filter!.onSkip();
          else onLine(chunk, s, nl > s && chunk.charCodeAt(nl - 1) === 13 ? nl - 1 : nl, mask);
        }
        s = nl + 1;
      }
      return s;
    }
    for (let nl = buf.indexOf(10, 0); nl >= 0 && nl < end; nl = buf.indexOf(10, s)) {
      if (skipping) skipping = false;
      else deliverBytes(s, nl);
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
          if (!skipping) {
            const text = buf.toString('utf8', 0, end);
            onLine(text, 0, text.length, ALL_LITERALS);
          }
          skipping = true;
          s = end;
        }
      }
      held = end - s;
      if (s > 0 && held > 0) buf.copy(buf, 0, s, end);
      const wait = pause?.();
      if (wait !== undefined) await wait;
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
    deliverBytes(0, held);
  }
}

/** The part of a literal an ASCII chunk is searched for: `text` starts `at` characters in. */
interface Piece {
  text: string;
  at: number;
}

/**
 * V8 searches a needle of under 7 characters by scanning for its first character (memchr), then
 * comparing; a longer one goes through Boyer-Moore-Horspool set up on each call. For a literal
 * that is rarely there (`dovecot` in an sshd log) each search runs to the end of the 64 KiB
 * chunk, so its cost is how often that first character occurs: `dovecot` took ≈ 40 µs a chunk,
 * its piece `cot` 4 µs (docs/adr/0050). The rarest character is the one least often in the
 * first chunk's first few KiB.
 */
function rarestPiece(text: string, chunk: string): Piece {
  let at = 0;
  let least = Number.POSITIVE_INFINITY;
  for (let i = 0; i < text.length; i++) {
    const n = occurrences(chunk, text[i]!);
    if (n < least) {
      least = n;
      at = i;
    }
  }
  // A short literal whose first character is about as rare is searched whole: no check after
  // each hit (`sshd` is on most lines of an auth log; its hits, not the scan, are the cost).
  if (text.length < 7 && occurrences(chunk, text[0]!) <= least * 8 + 8) return { text, at: 0 };
  return { text: text.slice(at, at + 6), at };
}

/** Characters of the first chunk sampled for `rarestPiece`: about 40 log lines. */
const SAMPLE = 4096;

/**
 * How often `ch` occurs in the chunk's first SAMPLE characters. By native searches: this runs
 * once, before V8 compiles anything, and a loop over bytes in the interpreter took ≈ 30 ms.
 */
function occurrences(chunk: string, ch: string): number {
  let n = 0;
  for (let p = chunk.indexOf(ch); p >= 0 && p < SAMPLE; p = chunk.indexOf(ch, p + 1)) n++;
  return n;
}

/** Where `text` starts in `chunk` at or after `from`, or -1: its piece found, then the whole checked. */
function findLiteral(chunk: string, text: string, piece: Piece, from: number): number {
  for (let p = chunk.indexOf(piece.text, from + piece.at); p >= 0; p = chunk.indexOf(piece.text, p + 1)) {
    if (piece.at === 0 && piece.text.length === text.length) return p;
    if (chunk.startsWith(text, p - piece.at)) return p - piece.at;
  }
  return NONE;
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

import { isAscii } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { RampartError } from '../core/errors.js';
import { fsReason, isPathMistake } from '../core/fs-error.js';

/** Chunk size for replays: big enough for few syscalls, small enough to keep the heap (peak RSS) low. */
const CHUNK = 1 << 18;
/**
 * A line longer than this is delivered truncated (detection counts it as oversized) and the rest
 * up to its newline is dropped: never re-read as the start of a new line, which would let the
 * writer of a huge line forge a line of their choosing.
 */
const MAX_LINE = 4 << 20;

/**
 * Calls `onLine` for every line of a file (`-` = standard input), in order. Bytes are decoded as
 * UTF-8 with replacement characters, so invalid UTF-8 or binary garbage can neither throw nor
 * split a line; a trailing `\r` is dropped; a last line without `\n` is still delivered.
 */
export async function forEachLine(path: string, onLine: (text: string) => void): Promise<void> {
  const stream = path === '-' ? process.stdin : createReadStream(path, { highWaterMark: CHUNK });
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let carry = '';
  let skipping = false;
  try {
    // Logs are nearly always ASCII: a chunk that is (a SIMD check) is copied as Latin-1, which
    // is the same text and several times cheaper than UTF-8 decoding. After the first chunk
    // that is not, everything goes through the decoder, which may hold a split sequence.
    let ascii = true;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (ascii && !isAscii(chunk)) ascii = false;
      let text = carry + (ascii ? chunk.toString('latin1') : decoder.decode(chunk, { stream: true }));
      if (skipping) {
        const nl = text.indexOf('\n');
        if (nl < 0) {
          carry = '';
          continue;
        }
        text = text.slice(nl + 1);
        skipping = false;
      }
      carry = splitInto(text, onLine);
      if (carry.length > MAX_LINE) {
        onLine(carry);
        carry = '';
        skipping = true;
      }
    }
  } catch (err) {
    // A wrong path on the command line is the operator's input (exit 2); a read failing midway is not.
    const code = isPathMistake(err) ? 'E_USAGE' : 'E_SOURCE';
    throw new RampartError(code, `cannot read ${path === '-' ? 'standard input' : path}: ${fsReason(err)}`, {
      cause: err,
    });
  }
  const rest = carry + decoder.decode();
  if (rest.length > 0 && !skipping) splitInto(`${rest}\n`, onLine);
}

/** Delivers every complete line of `text`; returns the incomplete tail. */
function splitInto(text: string, onLine: (text: string) => void): string {
  let start = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
    const end = nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    onLine(text.slice(start, end));
    start = nl + 1;
  }
  return start === 0 ? text : text.slice(start);
}

import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { assertBannable, clip, parseTarget, type Target } from '../core/address.js';
import { readConfigText } from '../core/config-file.js';
import { type DurationSeconds, parseDuration } from '../core/duration.js';
import { ConfigError, RampartError } from '../core/errors.js';
import { fsReason } from '../core/fs-error.js';

export interface TargetLine {
  target: Target;
  /** The optional second column; undefined when the line gives none. */
  timeout: DurationSeconds | undefined;
  line: number;
}

export interface TargetFileOptions {
  bannable?: boolean;
}

/** Bytes read per step: a million-line file is never one string (nor an array of its lines). */
const BLOCK = 1 << 20;

/**
 * Reads `TARGET [DURATION]` lines (`#` comments and blank lines skipped). Any bad line fails the
 * whole file with `FILE:LINE:` and the offending text, before anything is applied.
 */
export function readTargetFile(file: string, opts: TargetFileOptions = {}): TargetLine[] {
  return [...eachTargetLine(file, opts)];
}

/**
 * The same lines one at a time, read from the file in blocks; `-` is standard input, read whole
 * (it cannot be read twice). Throws at the first bad line, as `readTargetFile` does.
 */
export function* eachTargetLine(file: string, opts: TargetFileOptions = {}): Generator<TargetLine> {
  let n = 0;
  for (const text of file === '-' ? readConfigText(file).split('\n') : fileLines(file)) {
    n++;
    const raw = text.replace(/#.*/, '').trim();
    if (raw === '') continue;
    const [addr, duration, extra] = raw.split(/\s+/);
    try {
      if (extra !== undefined)
        throw new RampartError('E_USAGE', `"${clip(raw)}": expected TARGET [DURATION]`);
      const target = parseTarget(addr!, { hostBits: 'reject' });
      if (opts.bannable) assertBannable(target);
      yield { target, timeout: duration === undefined ? undefined : parseDuration(duration), line: n };
    } catch (err) {
      if (err instanceof RampartError) {
        throw new RampartError(err.code, `${file}:${n}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}

/** A file's lines, read BLOCK bytes at a time (UTF-8 split across blocks is kept whole). */
function* fileLines(file: string): Generator<string> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new ConfigError(`cannot read: ${fsReason(err)}`, { file }, { cause: err });
  }
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, 0, BLOCK, null);
      } catch (err) {
        throw new ConfigError(`cannot read: ${fsReason(err)}`, { file }, { cause: err });
      }
      if (got === 0) break;
      const text = rest + decoder.write(buf.subarray(0, got));
      let from = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
        yield text.slice(from, nl);
        from = nl + 1;
      }
      rest = text.slice(from);
    }
    rest += decoder.end();
    if (rest !== '') yield rest;
  } finally {
    closeSync(fd);
  }
}

import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  /** The name errors give the file (default: `file`); a spooled standard input is `-`. */
  label?: string;
}

const SPACE = /\s/;

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
  // A list nearly always repeats one duration: parsed once, not once per line.
  let lastDuration: string | undefined;
  let lastTimeout: DurationSeconds | undefined;
  for (const text of file === '-' ? readConfigText(file).split('\n') : fileLines(file)) {
    n++;
    const hash = text.indexOf('#');
    const raw = (hash < 0 ? text : text.slice(0, hash)).trim();
    if (raw === '') continue;
    const [addr, duration, extra] = SPACE.test(raw) ? raw.split(/\s+/) : [raw];
    try {
      if (extra !== undefined)
        throw new RampartError('E_USAGE', `"${clip(raw)}": expected TARGET [DURATION]`);
      const target = parseTarget(addr!, { hostBits: 'reject' });
      if (opts.bannable) assertBannable(target);
      if (duration !== lastDuration) {
        lastTimeout = duration === undefined ? undefined : parseDuration(duration);
        lastDuration = duration;
      }
      yield { target, timeout: lastTimeout, line: n };
    } catch (err) {
      if (err instanceof RampartError) {
        throw new RampartError(err.code, `${opts.label ?? file}:${n}: ${err.message}`, { cause: err });
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

/**
 * Copies standard input, BLOCK bytes at a time, into a new file only this user can read, so a
 * million lines piped in are read twice like a named file instead of held as one string. The
 * caller removes it with `remove()`.
 */
export function spoolStdin(): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-stdin-'));
  const file = join(dir, 'targets');
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const out = openSync(file, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(BLOCK);
      for (;;) {
        let got: number;
        try {
          got = readSync(0, buf, 0, BLOCK, null);
        } catch (err) {
          // A non-blocking standard input (a terminal in some shells) has nothing yet: wait.
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
            continue;
          }
          throw new ConfigError(`cannot read: ${fsReason(err)}`, { file: '-' }, { cause: err });
        }
        if (got === 0) break;
        for (let off = 0; off < got; ) off += writeSync(out, buf, off, got - off);
      }
    } finally {
      closeSync(out);
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { file, remove };
}

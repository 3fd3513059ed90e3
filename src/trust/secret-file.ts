import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { RampartError } from '../core/errors.js';
import { fsReason } from '../core/fs-error.js';

/**
 * Reads a file holding a secret (a private key, a token). Refuses (E_AUTH) one that the group or
 * others can read, like ssh does, with the chmod that fixes it.
 */
export function readSecretFile(file: string, what = 'secret file'): string {
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) {
      throw new RampartError(
        'E_AUTH',
        `${what} ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
      );
    }
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof RampartError) throw err;
    throw new RampartError('E_AUTH', `cannot read ${what} ${file}: ${errCode(err)}`, { cause: err });
  }
}

/**
 * Writes a secret with mode 0600 (its folder 0700 when created), atomically: a temp file, then
 * rename. With `exclusive`, an existing file is kept and false returned, so two processes starting
 * at once cannot end up with two different secrets.
 */
export function writeSecretFile(
  file: string,
  text: string,
  opts: { exclusive?: boolean; what?: string } = {},
): boolean {
  const what = opts.what ?? 'secret file';
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    // The mode given to writeFileSync is filtered by umask.
    chmodSync(tmp, 0o600);
    if (!opts.exclusive) {
      renameSync(tmp, file);
      return true;
    }
    // link() fails with EEXIST where rename would replace.
    try {
      linkSync(tmp, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new RampartError('E_AUTH', `cannot write ${what} ${file}: ${errCode(err)}`, { cause: err });
  }
}

function errCode(err: unknown): string {
  return fsReason(err);
}

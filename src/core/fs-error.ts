/**
 * Turns a file-system error into words an operator reads without a manual: "no such file" rather
 * than a bare `ENOENT`. The code stays in parentheses so a search engine still finds it.
 */
const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder, not a file',
  EACCES: 'permission denied (run as a user who may read it)',
  EPERM: 'operation not permitted',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  ENOSPC: 'no space left on the device',
  EROFS: 'the file system is read-only',
};

/** The codes that mean the path an operator gave is wrong, not that the machine failed. */
const PATH_MISTAKES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG']);

export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return err instanceof Error ? err.message : String(err);
}

export function isPathMistake(err: unknown): boolean {
  return PATH_MISTAKES.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

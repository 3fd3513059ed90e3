import { closeSync, openSync, readSync } from 'node:fs';

/** The first `bytes` bytes of `path`. */
function head(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(bytes);
    readSync(fd, b, 0, bytes, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

/**
 * [frames in the WAL, frames copied back] of a SQLite database in WAL mode, read from its
 * WAL-index header (`FILE-shm`, little-endian machine). A WAL started over shows ≤ 2 frames.
 */
export function walHeader(file: string): [number, number] {
  const b = head(`${file}-shm`, 100);
  return [b.readUInt32LE(16), b.readUInt32LE(96)];
}

/**
 * How many times the WAL of `file` was started over since it was created: the checkpoint sequence
 * number in the WAL file's own header (big-endian), 0 before the first restart.
 */
export function walRestarts(file: string): number {
  return head(`${file}-wal`, 16).readUInt32BE(12);
}

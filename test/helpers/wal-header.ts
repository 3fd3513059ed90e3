import { closeSync, openSync, readSync } from 'node:fs';

/**
 * [frames in the WAL, frames copied back] of a SQLite database in WAL mode, read from its
 * WAL-index header (`FILE-shm`, little-endian machine). A WAL started over shows ≤ 2 frames.
 */
export function walHeader(file: string): [number, number] {
  const fd = openSync(`${file}-shm`, 'r');
  try {
    const b = Buffer.alloc(100);
    readSync(fd, b, 0, 100, 0);
    return [b.readUInt32LE(16), b.readUInt32LE(96)];
  } finally {
    closeSync(fd);
  }
}

/**
 * How many times the WAL of `file` was started over since it was created: the checkpoint sequence
 * number in the WAL file's own header (big-endian), 0 before the first restart.
 */
export function walRestarts(file: string): number {
  const fd = openSync(`${file}-wal`, 'r');
  try {
    const b = Buffer.alloc(16);
    readSync(fd, b, 0, 16, 0);
    return b.readUInt32BE(12);
  } finally {
    closeSync(fd);
  }
}

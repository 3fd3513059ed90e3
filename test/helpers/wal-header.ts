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

import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';

/** Bytes read: the two copies of the WAL-index header (48 each), then nBackfill. */
const HEADER_BYTES = 100;
const IS_INIT = 12;
const MX_FRAME = 16;
const N_BACKFILL = 96;

/**
 * Reads how many WAL frames wait to be copied into the database from SQLite's WAL-index file
 * (`-shm`; layout in SQLite's "WAL-index format": mxFrame at byte 16 of the header, nBackfill at
 * byte 96, both in the machine's byte order). One `pread` of 100 bytes, no SQL, no lock: the
 * answer only decides whether to checkpoint, so a value read mid-update costs at most one early
 * or late checkpoint.
 */
export class WalIndex {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(HEADER_BYTES);
  private readonly little = endianness() === 'LE';

  constructor(private readonly path: string) {}

  /** Frames in the WAL not yet in the database; undefined when there is no index file to read. */
  framesWaiting(): number | undefined {
    try {
      // Opened at the first look: SQLite creates the file with the database's first write.
      this.fd ??= openSync(this.path, 'r');
      if (readSync(this.fd, this.buf, 0, HEADER_BYTES, 0) < HEADER_BYTES) return undefined;
    } catch {
      return undefined;
    }
    if (this.buf[IS_INIT] !== 1) return undefined;
    const u32 = (at: number) => (this.little ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at));
    return Math.max(0, u32(MX_FRAME) - u32(N_BACKFILL));
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

import { fstatSync, readSync, type Stats, statSync } from 'node:fs';
import { type FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../core/logger.js';
import { LineSplitter } from './line-splitter.js';
import type { PositionStore } from './types.js';

const HEAD_BYTES = 64;
const CHUNK = 256 * 1024;

/** What is stored per path: which file (dev+ino), how far its complete lines were read, its head. */
interface StoredPosition {
  dev: number;
  ino: number;
  offset: number;
  /** First bytes of the file (base64): a changed head means the file was truncated and rewritten. */
  head: string;
}

interface OpenFile {
  fh: FileHandle;
  dev: number;
  ino: number;
  /** Bytes read so far (the splitter may still hold the tail of them). */
  offset: number;
  head: Buffer;
  splitter: LineSplitter;
  /** For a rotated file still being drained: when it last grew. */
  lastGrowth: number;
}

export interface TailOptions {
  path: string;
  /** Where to start when no position is stored and the file exists at the first check. */
  fromStart: boolean;
  maxLineBytes: number;
  /** A rotated-away file is drained until it has not grown for this long, then closed. */
  rotateGraceMs: number;
  positions: PositionStore | undefined;
  log: Logger;
  emit: (text: string, path: string) => void;
}

/**
 * Follows one path across rotations. `check()` (called on fs.watch events and on a poll) notices
 * a new inode behind the path (rename rotation: the old file is read to its end first, then the new
 * one from 0) or a file that shrank or whose first bytes changed (copytruncate: restart at 0), and
 * reads whatever complete lines were appended. The stored offset always points at the start of a
 * line, so a restart neither loses nor repeats one.
 */
export class FileTail {
  private current: OpenFile | undefined;
  private readonly retiring: OpenFile[] = [];
  private first = true;
  private queue: Promise<void> = Promise.resolve();
  private saving: NodeJS.Immediate | undefined;
  private readonly key: string;
  truncatedLines = 0;

  constructor(private readonly o: TailOptions) {
    this.key = `file:${o.path}`;
  }

  get path(): string {
    return this.o.path;
  }

  /** True while nothing is open (the path is gone and any rotated file is drained). */
  get idle(): boolean {
    return !this.current && this.retiring.length === 0;
  }

  /** Runs one check; calls are queued, never concurrent (two would open the same file twice). */
  check(): Promise<void> {
    const run = this.queue.then(() => this.checkNow());
    this.queue = run.catch(() => {});
    return run;
  }

  private async checkNow(): Promise<void> {
    // The steady state (a line appended to an open log) makes only synchronous calls: each
    // asynchronous one is a round trip through libuv's thread pool, and on a loaded machine those
    // hops, not the microseconds of a stat or read from the page cache, were a failing line's delay.
    let st: Stats | undefined;
    try {
      st = statSync(this.o.path, { throwIfNoEntry: false });
      if (!st?.isFile()) st = undefined;
    } catch {
      st = undefined;
    }
    const cur = this.current;
    // Replaced (rotation) or gone (renamed or deleted): drain the old file through its descriptor,
    // then close it, so a deleted log's space is not held forever.
    if (cur && (!st || st.ino !== cur.ino || st.dev !== cur.dev)) {
      this.o.log.info({ path: this.o.path }, 'file rotated or removed: finishing the old file');
      cur.lastGrowth = Date.now();
      this.retiring.push(cur);
      this.current = undefined;
    }
    // Old files first: their lines were written before the new file's.
    for (const f of [...this.retiring]) {
      if ((await this.readNew(f)) > 0) f.lastGrowth = Date.now();
      else if (Date.now() - f.lastGrowth >= this.o.rotateGraceMs) await this.retire(f);
    }
    if (!this.current && st) await this.openCurrent();
    // Only a file present at the very first check counts as old (start at its end); one that
    // appears later is new, so all of it is read.
    this.first = false;
    const f = this.current;
    if (!f) return;
    if (await this.wasTruncated(f)) {
      this.o.log.warn({ path: this.o.path }, 'file truncated (copytruncate?): reading again from the start');
      await this.finishFromCopy(f);
      f.offset = 0;
      f.head = Buffer.alloc(0);
      f.splitter.reset();
    }
    await this.readNew(f);
    this.saveSoon();
  }

  /**
   * Stores the position on the next turn of the event loop: a ban found in these lines is
   * committed first (its commit was scheduled while they were read). A crash in between loses no
   * more than one before the write would: those lines are read again at the next start.
   */
  private saveSoon(): void {
    if (this.saving) return;
    this.saving = setImmediate(() => {
      this.saving = undefined;
      // The file followed by then (a rotation in between moved on to the new one).
      if (this.current) this.save(this.current);
    });
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.saving) clearImmediate(this.saving);
    this.saving = undefined;
    if (this.current) this.save(this.current);
    // Only the current file's position is stored: take what a rotated file still holds now.
    for (const f of [...this.retiring]) {
      await this.readNew(f).catch(() => 0);
      await this.retire(f, false);
    }
    await this.current?.fh.close().catch(() => {});
    this.current = undefined;
  }

  private async openCurrent(): Promise<void> {
    let fh: FileHandle;
    try {
      fh = await open(this.o.path, 'r');
    } catch (err) {
      this.o.log.warn({ path: this.o.path, err: String(err) }, 'cannot open log file; will retry');
      return;
    }
    const fst = await fh.stat();
    // The same file back under its name (renamed away and back): carry on where we were.
    const back = this.retiring.find((r) => r.dev === fst.dev && r.ino === fst.ino);
    if (back) {
      await fh.close();
      this.retiring.splice(this.retiring.indexOf(back), 1);
      this.current = back;
      return;
    }
    const f: OpenFile = {
      fh,
      dev: fst.dev,
      ino: fst.ino,
      offset: 0,
      head: Buffer.alloc(0),
      splitter: new LineSplitter(this.o.maxLineBytes),
      lastGrowth: Date.now(),
    };
    if (this.first) {
      const stored = this.stored();
      if (stored && stored.dev === fst.dev && stored.ino === fst.ino) {
        f.head = Buffer.from(stored.head, 'base64');
        f.offset = stored.offset;
        // wasTruncated() below sees a shorter or rewritten file and restarts at 0.
      } else if (stored) {
        // Rotated while we were down: finish the old file (auth.log.1) from where we stopped.
        await this.findRotated(stored);
      } else if (!this.o.fromStart) {
        f.offset = fst.size;
        f.head = await readHead(fh, fst.size);
      }
    }
    this.current = f;
  }

  private async findRotated(stored: StoredPosition): Promise<void> {
    for (const p of await this.siblings()) {
      try {
        const s = await stat(p);
        if (s.dev !== stored.dev || s.ino !== stored.ino || s.size < stored.offset) continue;
        const fh = await open(p, 'r');
        this.o.log.info({ path: this.o.path, rotated: p }, 'finishing the file rotated while stopped');
        this.retiring.push({
          fh,
          dev: s.dev,
          ino: s.ino,
          offset: stored.offset,
          head: Buffer.alloc(0),
          splitter: new LineSplitter(this.o.maxLineBytes),
          lastGrowth: Date.now(),
        });
        for (const f of this.retiring) await this.readNew(f);
        return;
      } catch {
        // Gone or unreadable (compressed away): nothing to finish.
      }
    }
    this.o.log.warn(
      { path: this.o.path },
      'file was replaced while stopped and the old one is gone; reading the new one from the start',
    );
  }

  /**
   * copytruncate copies the file and then truncates it: lines appended after our last read but
   * before the truncation survive only in the copy (auth.log.1). Find that copy by its first bytes
   * and read it from our offset to its end, so those lines are not lost.
   */
  private async finishFromCopy(f: OpenFile): Promise<void> {
    if (f.head.length === 0) return;
    for (const p of await this.siblings()) {
      let fh: FileHandle | undefined;
      try {
        fh = await open(p, 'r');
        const s = await fh.stat();
        if (s.size < f.offset || (s.dev === f.dev && s.ino === f.ino)) continue;
        if (!(await readHead(fh, s.size)).subarray(0, f.head.length).equals(f.head)) continue;
        const copy: OpenFile = { ...f, fh, dev: s.dev, ino: s.ino };
        await this.readNew(copy);
        f.splitter.flush((text, truncated) => this.line(text, truncated));
        return;
      } catch {
        // Unreadable candidate: try the next.
      } finally {
        await fh?.close().catch(() => {});
      }
    }
  }

  /** Files next to ours whose name extends it: where rotation puts old copies (`auth.log.1`). */
  private async siblings(): Promise<string[]> {
    const dir = dirname(this.o.path);
    const base = basename(this.o.path);
    try {
      return (await readdir(dir)).filter((n) => n !== base && n.startsWith(base)).map((n) => join(dir, n));
    } catch {
      return [];
    }
  }

  private async wasTruncated(f: OpenFile): Promise<boolean> {
    const size = fstatSync(f.fh.fd).size;
    if (size < f.offset) return true;
    const head = readHeadSync(f.fh.fd, size);
    const known = f.head.length;
    if (known > 0 && (head.length < known || !head.subarray(0, known).equals(f.head))) return true;
    if (head.length > known) f.head = head;
    return false;
  }

  /** Reads from the offset to the end of file; returns the bytes read. */
  private async readNew(f: OpenFile): Promise<number> {
    // Most polls find nothing new: skip the buffer then (many files are polled every second).
    const size = fstatSync(f.fh.fd).size;
    if (size <= f.offset) return 0;
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(64 * 1024, size - f.offset)));
    let total = 0;
    for (let first = true; ; first = false) {
      // A big backlog is read a chunk per turn of the event loop, so the bus and the API are
      // served between chunks as they were with asynchronous reads.
      if (!first) await new Promise<void>((r) => setImmediate(r));
      const bytesRead = readSync(f.fh.fd, buf, 0, buf.length, f.offset);
      if (bytesRead === 0) break;
      // Remember the first bytes as read, to recognise this content later (see wasTruncated).
      if (f.offset < HEAD_BYTES && f.head.length === f.offset) {
        f.head = Buffer.concat([f.head, buf.subarray(0, Math.min(bytesRead, HEAD_BYTES - f.offset))]);
      }
      f.offset += bytesRead;
      total += bytesRead;
      f.splitter.push(buf.subarray(0, bytesRead), (text, truncated) => this.line(text, truncated));
      if (bytesRead < buf.length) break;
    }
    return total;
  }

  private line(text: string, truncated: boolean): void {
    if (truncated) {
      this.truncatedLines++;
      this.o.log.warn(
        { path: this.o.path, maxLineBytes: this.o.maxLineBytes },
        'line longer than the cap: cut',
      );
    }
    this.o.emit(text, this.o.path);
  }

  private async retire(f: OpenFile, finish = true): Promise<void> {
    // A rotated file is complete: its last line is emitted even without a final newline.
    if (finish) f.splitter.flush((text, truncated) => this.line(text, truncated));
    await f.fh.close().catch(() => {});
    this.retiring.splice(this.retiring.indexOf(f), 1);
  }

  private stored(): StoredPosition | undefined {
    const raw = this.o.positions?.get(this.key);
    if (!raw) return undefined;
    try {
      const p = JSON.parse(raw) as StoredPosition;
      if (Number.isSafeInteger(p.offset) && p.offset >= 0 && typeof p.head === 'string') return p;
    } catch {
      // Unreadable position: treated as none.
    }
    this.o.log.warn({ path: this.o.path }, 'ignoring an unreadable stored position');
    return undefined;
  }

  private save(f: OpenFile): void {
    if (!this.o.positions) return;
    const p: StoredPosition = {
      dev: f.dev,
      ino: f.ino,
      offset: f.offset - f.splitter.pendingBytes,
      head: f.head.toString('base64'),
    };
    this.o.positions.set(this.key, JSON.stringify(p));
  }
}

function readHeadSync(fd: number, size: number): Buffer {
  const n = Math.min(HEAD_BYTES, size);
  if (n === 0) return Buffer.alloc(0);
  const buf = Buffer.alloc(n);
  return buf.subarray(0, readSync(fd, buf, 0, n, 0));
}

async function readHead(fh: FileHandle, size: number): Promise<Buffer> {
  const n = Math.min(HEAD_BYTES, size);
  if (n === 0) return Buffer.alloc(0);
  const buf = Buffer.alloc(n);
  const { bytesRead } = await fh.read(buf, 0, n, 0);
  return buf.subarray(0, bytesRead);
}

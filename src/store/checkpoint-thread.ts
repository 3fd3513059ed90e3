import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The checkpoint thread's code, as JavaScript text (worker threads get no TypeScript loader, so
 * text runs the same from `dist/` and under the test runner). It holds a second connection per
 * database file and, when asked, checkpoints that file's WAL (PASSIVE: never waits for the main
 * connection) and then makes the one write that starts the WAL over.
 *
 * Why that write: with `synchronous = NORMAL`, SQLite syncs the WAL file's header when a writer
 * begins to reuse a WAL after a complete checkpoint. Left to the main connection, that fsync
 * lands inside the next ban's own commit. Rewriting `user_version` with its own value is a write
 * transaction any rampart database accepts (no table of ours is touched, no prepared statement
 * is invalidated), so the restart and its sync happen here instead.
 */
const THREAD_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const dbs = new Map();
parentPort.on('message', (m) => {
  if (m.close) {
    const db = dbs.get(m.file);
    dbs.delete(m.file);
    try { if (db) db.close(); } catch {}
    const done = new Int32Array(m.done);
    Atomics.store(done, 0, 1);
    Atomics.notify(done, 0);
    return;
  }
  try {
    let db = dbs.get(m.file);
    if (!db) {
      db = new Database(m.file, { fileMustExist: true });
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 200');
      dbs.set(m.file, db);
    }
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    let restarted = false;
    if (r.busy === 0 && r.log > 0 && r.checkpointed === r.log) {
      try {
        db.exec('BEGIN IMMEDIATE');
      } catch (err) {
        // The main connection is writing (a bulk append can hold the lock longer than the busy
        // timeout): the WAL is started over by that writer or at the next checkpoint instead.
        if (!err || typeof err.code !== 'string' || !err.code.startsWith('SQLITE_BUSY')) throw err;
        parentPort.postMessage({ file: m.file, restarted: false });
        return;
      }
      try {
        const v = Number(db.pragma('user_version', { simple: true }));
        db.pragma('user_version = ' + v);
        db.exec('COMMIT');
        restarted = true;
      } catch (err) {
        db.exec('ROLLBACK');
        throw err;
      }
    }
    parentPort.postMessage({ file: m.file, restarted });
  } catch (err) {
    parentPort.postMessage({ file: m.file, error: String((err && err.message) || err) });
  }
});
`;

/** The longest a closing database waits for the thread to close its connection to the same file. */
const CLOSE_WAIT_MS = 2_000;

type Answer = { file: string; restarted?: boolean; error?: string };

/**
 * WAL checkpoints off the main thread (ADR 0070): a checkpoint's two fsyncs, and the WAL header's
 * sync on the write after it, took 4-40 ms of the thread that serves bans, once every few dozen
 * single bans, which made the p99 of a ban's way into the kernel on `rampart up` and `rampart hub`.
 * One thread serves every database file of the process. Used only where an extra V8 isolate
 * (about 5 MB) is affordable: not by `rampart agent`, whose idle memory is held under 60 MB.
 */
export class CheckpointThread {
  private worker: Worker | undefined;
  private readonly busy = new Set<string>();
  private readonly failed = new Set<string>();
  private stopped = false;
  /** Checkpoints asked for and answered, and how many of them started the WAL over. */
  readonly counts = { done: 0, restarted: 0 };

  /** Started at the first checkpoint: a hub on PostgreSQL, or one that never writes 256 pages, has none. */
  private start(): Worker {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { sqlite }, execArgv: [] });
    worker.on('message', (a: Answer) => {
      this.busy.delete(a.file);
      if (a.error !== undefined) this.failed.add(a.file);
      else {
        this.counts.done++;
        if (a.restarted) this.counts.restarted++;
      }
    });
    worker.on('error', () => this.stop());
    // Never what keeps a process alive; SQLite's own checkpoint stays the bound if it stops.
    // After the listeners: node refs a worker's port again when its first 'message' listener is
    // added, and a hub that had checkpointed once then never exited on SIGTERM.
    worker.unref();
    return worker;
  }

  /**
   * Asks for a checkpoint of `file`; false when this thread cannot serve it (it failed on that
   * file before, or the thread is gone), and then the caller checkpoints on its own thread.
   */
  checkpoint(file: string): boolean {
    if (this.stopped || this.failed.has(file)) return false;
    if (this.busy.has(file)) return true;
    this.busy.add(file);
    this.worker ??= this.start();
    this.worker.postMessage({ file });
    return true;
  }

  /**
   * The main connection to `file` is about to close: the thread's closes first, and this waits
   * for it (at most CLOSE_WAIT_MS, behind a checkpoint it may be running), so that the main
   * connection is the file's last. SQLite checkpoints and removes the WAL when the last one
   * closes: a stopped hub leaves a complete `hub.db` that can be copied alone.
   */
  forget(file: string): void {
    this.busy.delete(file);
    this.failed.delete(file);
    if (this.stopped || this.worker === undefined) return;
    const done = new Int32Array(new SharedArrayBuffer(4));
    this.worker.postMessage({ file, close: true, done: done.buffer });
    Atomics.wait(done, 0, 0, CLOSE_WAIT_MS);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    void this.worker?.terminate();
  }
}

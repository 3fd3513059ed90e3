import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { CheckpointThread } from './checkpoint-thread.js';
import { WalIndex } from './wal-index.js';

// CommonJS loaded with require, not import: an `import` loads node's CommonJS export lexer and
// parses the package with it, ≈ 0.9 MB an idle process keeps (ADR 0056).
const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

/**
 * Opens a SQLite file the way every rampart database wants it: WAL, so readers never block the
 * writer; synchronous NORMAL, durable across process crashes in WAL mode (only a power cut may
 * lose the last transactions); temporary files (statement journals) in memory; a busy timeout, so
 * a second process (the CLI, another hub) waits instead of failing.
 */
export function openSqlite(file: string): BetterSqlite3.Database {
  // The decision log and node state are nobody else's business: a new file is made 0600 before
  // SQLite opens it (its -wal and -shm files copy the database file's mode). An older, wider
  // file is tightened here, and `rampart doctor` reports one that could not be.
  const onDisk = file !== ':memory:' && !file.startsWith('file:');
  if (onDisk) closeSync(openSync(file, 'a', 0o600));
  tighten(file);
  // A file's WAL is checkpointed between events; an in-memory database has none.
  const opened = (exclusive: boolean) => {
    const db = configure(new Database(file), exclusive);
    // An exclusive lock keeps every other connection out, the checkpoint thread's too.
    return onDisk ? checkpointBetweenEvents(db, file, exclusive ? undefined : offThread) : db;
  };
  try {
    return opened(false);
  } catch (err) {
    // A full disk: WAL's shared-memory file (32 KiB) cannot be created. With exclusive locking
    // SQLite keeps that index in the heap instead, so a restart still serves what it has; the
    // price (no second process on the file) is nothing for a hub that owns its data folder.
    if (!/SHMSIZE|SHMOPEN|SQLITE_FULL/.test(String((err as { code?: string }).code))) throw err;
    return opened(true);
  }
}

let offThread: CheckpointThread | undefined;

/**
 * From now on, databases opened in this process are checkpointed on a thread of their own
 * (ADR 0070). For the hub and `rampart up`, whose main thread serves bans; an agent stays without
 * (an extra isolate is about 5 MB of its idle 60). Idempotent; returns the thread, for its counts.
 */
export function checkpointOffThread(): CheckpointThread {
  offThread ??= new CheckpointThread();
  return offThread;
}

/** How often the WAL is checked for new frames and checkpointed (ms). */
const CHECKPOINT_MS = 500;

/**
 * WAL frames (pages) not yet copied into the database that make the timer checkpoint: a quarter
 * of SQLite's own 1,000-page threshold, so that one is still never reached between two looks at
 * ordinary rates, while a checkpoint (two fsyncs, 2-13 ms of the main thread here) comes once
 * per ~50-80 single bans instead of after each burst.
 */
export const CHECKPOINT_FRAMES = 256;

/**
 * SQLite checkpoints the WAL inside the commit that takes it past 1,000 pages: that commit copies
 * the pages into the database and syncs both files, 5-10 ms here, and when it was a ban's own
 * write (the agent's state, the hub's append) that ban reached the kernel that much later: one in
 * about every hundred, which is the p99 of the local and operator latencies. A timer between
 * events checkpoints instead once CHECKPOINT_FRAMES are waiting (read from the WAL index), so the
 * WAL stays far below the threshold under ordinary load. SQLite's own checkpoint stays as the
 * bound for a bulk load that writes faster than this. PASSIVE never waits for another connection.
 */
function checkpointBetweenEvents(
  db: BetterSqlite3.Database,
  file: string,
  thread: CheckpointThread | undefined,
): BetterSqlite3.Database {
  const index = new WalIndex(`${file}-shm`);
  const wal = `${file}-wal`;
  let seen = 0;
  if (thread) {
    // The thread's connection closes first, so this one is the last and leaves no WAL behind.
    const close = db.close.bind(db);
    db.close = () => {
      if (db.open) thread.forget(file);
      return close();
    };
  }
  const timer = setInterval(() => {
    if (!db.open) {
      clearInterval(timer);
      index.close();
      return;
    }
    try {
      const waiting = index.framesWaiting();
      if (waiting !== undefined) {
        if (waiting < CHECKPOINT_FRAMES) return;
      } else {
        // No WAL index file (exclusive locking keeps it in the heap): whenever the WAL moved.
        const written = statSync(wal, { throwIfNoEntry: false })?.mtimeMs ?? 0;
        if (written === seen) return;
        seen = written;
      }
      if (thread?.checkpoint(file)) return;
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // A full disk, a locked or unreadable file: SQLite's own checkpoint at the threshold still
      // runs, and a timer must never throw (it would end the process).
    }
  }, CHECKPOINT_MS);
  timer.unref();
  return db;
}

function configure(db: BetterSqlite3.Database, exclusive: boolean): BetterSqlite3.Database {
  try {
    if (exclusive) db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // Statement journals in memory: an upsert or a statement with triggers inside a large
    // transaction keeps one, and SQLite spills it to a temp file past 64 KiB. The hub's 10,000-ban
    // append wrote ~17 pages per decision there (864,000 pwrite calls for 50,000 decisions; 80 µs
    // of CPU per decision, 36 µs without). Large sorts measured no higher peak RSS at 300,000 rows.
    db.pragma('temp_store = MEMORY');
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** A database made before rampart created its files owner-only is closed to others on open. */
function tighten(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if (existsSync(f)) chmodSync(f, 0o600);
    } catch {
      // Not ours to change (a read-only mount, another owner): opening will say what is wrong.
    }
  }
}

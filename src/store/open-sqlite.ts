import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

/**
 * Opens a SQLite file the way every rampart database wants it: WAL, so readers never block the
 * writer; synchronous NORMAL, durable across process crashes in WAL mode (only a power cut may
 * lose the last transactions); temporary files (statement journals) in memory; a busy timeout, so
 * a second process (the CLI, another hub) waits instead of failing.
 */
export function openSqlite(file: string): Database.Database {
  // The decision log and node state are nobody else's business: a new file is made 0600 before
  // SQLite opens it (its -wal and -shm files copy the database file's mode). An older, wider
  // file is tightened here, and `rampart doctor` reports one that could not be.
  if (file !== ':memory:' && !file.startsWith('file:')) closeSync(openSync(file, 'a', 0o600));
  tighten(file);
  try {
    return configure(new Database(file), false);
  } catch (err) {
    // A full disk: WAL's shared-memory file (32 KiB) cannot be created. With exclusive locking
    // SQLite keeps that index in the heap instead, so a restart still serves what it has; the
    // price (no second process on the file) is nothing for a hub that owns its data folder.
    if (!/SHMSIZE|SHMOPEN|SQLITE_FULL/.test(String((err as { code?: string }).code))) throw err;
    return configure(new Database(file), true);
  }
}

function configure(db: Database.Database, exclusive: boolean): Database.Database {
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

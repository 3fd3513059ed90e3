import Database from 'better-sqlite3';

/**
 * Opens a SQLite file the way every rampart database wants it: WAL, so readers never block the
 * writer; synchronous NORMAL, durable across process crashes in WAL mode (only a power cut may
 * lose the last transactions); a busy timeout, so a second process (the CLI, another hub) waits
 * instead of failing.
 */
export function openSqlite(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit a
 * released entry: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE decisions (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL CHECK (action IN ('ban', 'unban')),
    target TEXT NOT NULL,
    family INTEGER NOT NULL,
    duration INTEGER,
    expires_at INTEGER,
    reason TEXT NOT NULL,
    rule TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    set_name TEXT NOT NULL
  );
  CREATE INDEX decisions_created ON decisions (created_at);
  -- head survives pruning so seq never goes back; pruned = highest seq removed by retention.
  CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, pruned INTEGER NOT NULL);
  INSERT INTO log_head (id, seq, pruned) VALUES (1, 0, 0);
  CREATE TABLE active (
    target TEXT NOT NULL,
    set_name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    expires_at INTEGER,
    PRIMARY KEY (target, set_name)
  );
  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    public_key TEXT,
    token_hash TEXT UNIQUE,
    join_secret_hash TEXT,
    created_at INTEGER NOT NULL,
    removed_at INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER,
    version TEXT
  );
  CREATE TABLE allowlist (cidr TEXT PRIMARY KEY, comment TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE ban_history (target TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at INTEGER NOT NULL);
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
];

/**
 * PostgreSQL schema migrations, applied in order; `rampart_schema.version` records how many ran.
 * The same tables as the SQLite store (sqlite-schema.ts), with BIGINT for epoch milliseconds and
 * seq. Never edit a released entry: append a new one.
 */
export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE decisions (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL CHECK (action IN ('ban', 'unban')),
    target TEXT NOT NULL,
    family SMALLINT NOT NULL,
    duration BIGINT,
    expires_at BIGINT,
    reason TEXT NOT NULL,
    rule TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    set_name TEXT NOT NULL
  );
  CREATE INDEX decisions_created ON decisions (created_at);
  -- The counter row: every append locks it (UPDATE ... RETURNING), so appends from every hub
  -- commit one after another, in seq order. pruned = highest seq removed by retention.
  CREATE TABLE log_head (id SMALLINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, pruned BIGINT NOT NULL);
  INSERT INTO log_head (id, seq, pruned) VALUES (1, 0, 0);
  CREATE TABLE active (
    target TEXT NOT NULL,
    set_name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    expires_at BIGINT,
    PRIMARY KEY (target, set_name)
  );
  CREATE INDEX active_seq ON active (seq);
  CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    public_key TEXT,
    token_hash TEXT UNIQUE,
    join_secret_hash TEXT,
    created_at BIGINT NOT NULL,
    removed_at BIGINT,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_seen BIGINT,
    version TEXT
  );
  CREATE TABLE allowlist (cidr TEXT PRIMARY KEY, comment TEXT NOT NULL, created_at BIGINT NOT NULL);
  CREATE TABLE ban_history (target TEXT PRIMARY KEY, count BIGINT NOT NULL, last_at BIGINT NOT NULL);
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  // 2: CrowdSec bouncers: read-only API keys (SHA-256 at rest) and each one's stream cursor.
  `
  CREATE TABLE bouncers (
    name TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_pull BIGINT,
    last_seq BIGINT NOT NULL DEFAULT 0
  );
  `,
  // 3: the dashboard's bans-per-minute chart (an index-only scan over the window).
  `CREATE INDEX decisions_ban_created ON decisions (created_at) WHERE action = 'ban';`,
];

import type Database from 'better-sqlite3';
import { addressKey } from './address-key.js';

/** A migration step: SQL, or code for what SQL cannot compute (address keys). */
export type Migration = string | ((db: Database.Database) => void);

/**
 * Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit a
 * released entry: append a new one.
 */
export const MIGRATIONS: readonly Migration[] = [
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
  // 2: the active set carries what the operator views filter on (origin, rule, time, the
  // address range as a sortable key), so listing pages through indexes, and a counts table kept
  // by triggers answers "how many" without reading the bans.
  `
  ALTER TABLE active ADD COLUMN family INTEGER NOT NULL DEFAULT 4;
  ALTER TABLE active ADD COLUMN origin TEXT NOT NULL DEFAULT '';
  ALTER TABLE active ADD COLUMN rule TEXT NOT NULL DEFAULT '';
  ALTER TABLE active ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE active ADD COLUMN lo BLOB;
  UPDATE active SET family = d.family, origin = d.origin, rule = d.rule, created_at = d.created_at
    FROM decisions d WHERE d.seq = active.seq;
  CREATE INDEX active_created ON active (created_at, seq);
  CREATE INDEX active_origin ON active (origin, created_at, seq);
  CREATE INDEX active_rule ON active (rule, created_at, seq);
  CREATE INDEX active_lo ON active (lo);
  CREATE INDEX active_expires ON active (expires_at) WHERE expires_at IS NOT NULL;
  CREATE TABLE active_counts (
    family INTEGER NOT NULL,
    origin TEXT NOT NULL,
    rule TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (family, origin, rule)
  );
  INSERT INTO active_counts (family, origin, rule, n)
    SELECT family, origin, rule, count(*) FROM active GROUP BY family, origin, rule;
  CREATE TRIGGER active_counts_insert AFTER INSERT ON active BEGIN
    INSERT INTO active_counts (family, origin, rule, n) VALUES (NEW.family, NEW.origin, NEW.rule, 1)
      ON CONFLICT (family, origin, rule) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER active_counts_delete AFTER DELETE ON active BEGIN
    UPDATE active_counts SET n = n - 1
      WHERE family = OLD.family AND origin = OLD.origin AND rule = OLD.rule;
  END;
  CREATE TRIGGER active_counts_update AFTER UPDATE OF family, origin, rule ON active
    WHEN OLD.family IS NOT NEW.family OR OLD.origin IS NOT NEW.origin OR OLD.rule IS NOT NEW.rule
  BEGIN
    UPDATE active_counts SET n = n - 1
      WHERE family = OLD.family AND origin = OLD.origin AND rule = OLD.rule;
    INSERT INTO active_counts (family, origin, rule, n) VALUES (NEW.family, NEW.origin, NEW.rule, 1)
      ON CONFLICT (family, origin, rule) DO UPDATE SET n = n + 1;
  END;
  `,
  (db) => {
    const rows = db
      .prepare<[], { target: string; set_name: string }>('SELECT target, set_name FROM active')
      .all();
    const set = db.prepare<[Buffer, string, string]>(
      'UPDATE active SET lo = ? WHERE target = ? AND set_name = ?',
    );
    for (const r of rows) set.run(addressKey(r.target), r.target, r.set_name);
  },
  // 4: CrowdSec bouncers: read-only API keys (SHA-256 at rest) and each one's stream cursor.
  `
  CREATE TABLE bouncers (
    name TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_pull INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0
  );
  `,
  // 5: the dashboard's bans-per-minute chart counts from this index alone (it covers the query),
  // instead of reading each log row in the window to check its action.
  `CREATE INDEX decisions_ban_created ON decisions (created_at) WHERE action = 'ban';`,
  // 6: the envelope kinds a node said it reads in its last heartbeat, for every hub on the store
  // (a heartbeat reaches one of them; ADR 0063).
  `ALTER TABLE nodes ADD COLUMN reads TEXT;`,
];

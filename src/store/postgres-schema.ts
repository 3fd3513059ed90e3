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
  // 4: one append = one round trip (ADR 0036). The counter row is locked by the first statement
  // and held to the end of the calling statement, so nothing waits on the network while holding
  // it. A VOLATILE function takes a fresh snapshot per statement: the active-set changes after
  // the lock see what another hub committed while this one waited (one statement with CTEs would
  // not: its DELETE would miss rows committed after it started). The caller passes the last
  // state per (target, set) and offences summed per target: a statement may touch a row once.
  `
  CREATE FUNCTION rampart_append(
    p_n BIGINT,
    p_id TEXT[], p_action TEXT[], p_target TEXT[], p_family SMALLINT[], p_duration BIGINT[],
    p_expires BIGINT[], p_reason TEXT[], p_rule TEXT[], p_origin TEXT[], p_created BIGINT[], p_set TEXT[],
    p_ban_target TEXT[], p_ban_set TEXT[], p_ban_ord BIGINT[], p_ban_expires BIGINT[],
    p_lift_target TEXT[], p_lift_set TEXT[],
    p_off_target TEXT[], p_off_count BIGINT[], p_off_at BIGINT[]
  ) RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $fn$
  DECLARE
    v_base BIGINT;
  BEGIN
    UPDATE log_head SET seq = seq + p_n WHERE id = 1 RETURNING seq - p_n INTO v_base;
    INSERT INTO decisions (seq, id, action, target, family, duration, expires_at, reason, rule, origin, created_at, set_name)
      SELECT v_base + u.ord, u.id, u.action, u.target, u.family, u.duration, u.expires, u.reason, u.rule, u.origin, u.created, u.set_name
      FROM unnest(p_id, p_action, p_target, p_family, p_duration, p_expires, p_reason, p_rule, p_origin, p_created, p_set)
        WITH ORDINALITY AS u(id, action, target, family, duration, expires, reason, rule, origin, created, set_name, ord);
    INSERT INTO active (target, set_name, seq, expires_at)
      SELECT b.target, b.set_name, v_base + b.ord, b.expires
      FROM unnest(p_ban_target, p_ban_set, p_ban_ord, p_ban_expires) AS b(target, set_name, ord, expires)
      ON CONFLICT (target, set_name) DO UPDATE SET seq = excluded.seq, expires_at = excluded.expires_at;
    DELETE FROM active a USING unnest(p_lift_target, p_lift_set) AS l(target, set_name)
      WHERE a.target = l.target AND a.set_name = l.set_name;
    INSERT INTO ban_history (target, count, last_at)
      SELECT o.target, o.n, o.at FROM unnest(p_off_target, p_off_count, p_off_at) AS o(target, n, at)
      ON CONFLICT (target) DO UPDATE SET count = ban_history.count + excluded.count, last_at = excluded.last_at;
    RETURN v_base;
  END
  $fn$;
  `,
  // 5: the envelope kinds a node said it reads in its last heartbeat, for every hub on the store
  // (a heartbeat reaches one of them; ADR 0063).
  `ALTER TABLE nodes ADD COLUMN reads TEXT;`,
];

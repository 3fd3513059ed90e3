import pg from 'pg';
import type { Decision } from '../core/decision.js';
import { RampartError } from '../core/errors.js';
import { redactUrl as redact } from '../core/redact-url.js';
import { decisionId } from './decision-id.js';
import { PairMap } from './pair-map.js';
import { type PgElement, pgArray } from './pg-array.js';
import { PG_PROBES } from './postgres-probes.js';
import { PG_MIGRATIONS } from './postgres-schema.js';
import { type DecisionRow, type NodeRow, toDecision, toNode } from './rows.js';
import { checkLimit } from './sqlite-active.js';
import type {
  ActiveCounts,
  ActiveOrderedQuery,
  ActivePage,
  ActiveQuery,
  AllowEntry,
  BanHistory,
  BouncerRecord,
  DecisionInput,
  LookUpOptions,
  NodeRecord,
  Store,
} from './types.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:5432/db` (any libpq-style URL pg understands). */
  url: string;
  /** Connections in the pool, default 10. */
  poolSize?: number;
  /** How often a write is retried after a lost connection (a PostgreSQL restart), default 20. */
  retries?: number;
  /** First retry delay, doubling up to 2 s; default 100 ms. */
  retryMs?: number;
  /** Longest wait for a connection (a new one, or a free one from the pool), default 10 s. */
  connectTimeoutMs?: number;
}

const INT8_OID = 20;
/** Epoch ms and seq fit a double exactly (< 2^53); pg returns BIGINT as text by default. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** Errors after which the same statement may succeed on a fresh connection. */
const TRANSIENT = /^(08|57P0[123]|53300|40001|40P01)/;
const TRANSIENT_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']);
/** Held while migrating, so hubs that start together do not migrate twice. */
const MIGRATE_LOCK = 0x72616d70; // "ramp"

type Query = (text: string, values?: unknown[]) => Promise<pg.QueryResult>;

/**
 * The store for several hubs on one PostgreSQL database. Seq comes from one counter row that
 * each append advances with `UPDATE ... RETURNING` inside its transaction (ADR 0014): the row lock
 * makes concurrent appends from every hub commit one after another, so seq is unique and gap-free
 * and readers never see seq N+1 committed before N. An append is one statement, a server-side
 * function (ADR 0036), so the lock is held for the server's work only, never a network wait. Writes lost to a dropped connection are
 * retried; an append's ids are chosen before the first attempt, so a retry after a commit whose
 * reply was lost finds its rows instead of appending them twice.
 */
export class PostgresStore implements Store {
  private readonly pool: pg.Pool;
  private closed = false;

  private constructor(private readonly o: PostgresStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: o.url,
      max: o.poolSize ?? 10,
      types,
      // A server that accepts and never answers (a wrong port, a frozen host) is an error after
      // this long, not a hub that hangs at start or a write that waits for good; writes retry it.
      connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000,
      // A connection whose peer vanished without a FIN (a cut link) is found by TCP keepalive.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // A transaction left open by a hub that froze must not hold log_head's row lock for every
      // other hub: the server ends the session after a minute.
      idle_in_transaction_session_timeout: 60_000,
    });
    // An idle connection killed by a server restart must not crash the hub.
    this.pool.on('error', () => undefined);
  }

  /** Connects, creates or migrates the schema, and resolves when the store is usable. */
  static async open(o: PostgresStoreOptions): Promise<PostgresStore> {
    const s = new PostgresStore(o);
    try {
      await s.migrate();
    } catch (err) {
      await s.pool.end().catch(() => undefined);
      throw err instanceof RampartError
        ? err
        : new RampartError('E_STORE', `cannot open the store ${redact(o.url)}: ${(err as Error).message}`, {
            cause: err,
          });
    }
    return s;
  }

  async append(
    inputs: DecisionInput[],
    offences: Array<{ target: string; at: number }> = [],
  ): Promise<Decision[]> {
    if (inputs.length === 0 && offences.length === 0) return [];
    // The decisions as they are returned, every field written in Decision's order (one shape):
    // `appendIn` gives each its seq once the log took them.
    const withIds = inputs.map(
      (i): Decision => ({
        id: i.id ?? decisionId(),
        seq: 0,
        action: i.action,
        target: i.target,
        family: i.family,
        duration: i.duration,
        expiresAt: i.expiresAt,
        reason: i.reason,
        rule: i.rule,
        origin: i.origin,
        createdAt: i.createdAt,
        set: i.set,
      }),
    );
    let attempt = 0;
    for (;;) {
      try {
        // After a lost connection the commit may have happened with only its reply lost: then
        // the rows are there under the ids chosen above, and appending again would double them.
        if (attempt > 0 && withIds.length > 0) {
          const found = await this.query(PG_PROBES.decisionsById, [pgArray(withIds.map((d) => d.id))]);
          if (found.rowCount === withIds.length) return found.rows.map((r) => toDecision(r as DecisionRow));
        }
        // One statement, its own transaction: rolled back whole, so no seq is burnt.
        return await this.appendIn((t, v) => this.query(t, v), withIds, offences);
      } catch (err) {
        if (!isTransient(err) || this.closed || ++attempt > (this.o.retries ?? 20))
          throw storeError('append', err);
        await this.backoff(attempt);
      }
    }
  }

  async since(seq: number, limit: number): Promise<Decision[]> {
    const r = await this.read('since', (q) =>
      q('SELECT * FROM decisions WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit]),
    );
    return r.rows.map((x) => toDecision(x as DecisionRow));
  }

  async active(now: number): Promise<Decision[]> {
    const r = await this.read('active', (q) =>
      q(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.expires_at IS NULL OR a.expires_at > $1 ORDER BY a.seq`,
        [now],
      ),
    );
    return r.rows.map((x) => toDecision(x as DecisionRow));
  }

  /**
   * Counted by PostgreSQL over the active set (a GROUP BY, not O(1) like SQLite's trigger-kept
   * table: a counts table updated by every hub would be a second hot row besides log_head).
   */
  async countActive(now: number): Promise<ActiveCounts> {
    const r = await this.read('countActive', (q) =>
      q(
        `SELECT d.family, d.origin, d.rule, count(*)::int AS n FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.expires_at IS NULL OR a.expires_at > $1 GROUP BY d.family, d.origin, d.rule`,
        [now],
      ),
    );
    const out: ActiveCounts = { total: 0, byFamily: { 4: 0, 6: 0 }, byOrigin: {}, byRule: {} };
    for (const row of r.rows as Array<{ family: number; origin: string; rule: string; n: number }>) {
      out.total += row.n;
      out.byFamily[row.family === 6 ? 6 : 4] += row.n;
      out.byOrigin[row.origin] = (out.byOrigin[row.origin] ?? 0) + row.n;
      out.byRule[row.rule] = (out.byRule[row.rule] ?? 0) + row.n;
    }
    return out;
  }

  async banCounts(from: number, bucketMs: number, buckets: number): Promise<number[]> {
    const r = await this.read('banCounts', (q) =>
      q(
        `SELECT ((created_at - $1) / $2)::int AS b, count(*)::int AS n FROM decisions
         WHERE created_at >= $1 AND created_at < $3 AND action = 'ban' GROUP BY b`,
        [from, bucketMs, from + bucketMs * buckets],
      ),
    );
    return bucketCounts(r.rows as Array<{ b: number; n: number }>, buckets);
  }

  /** Newest first with a keyset cursor; target containment through PostgreSQL's inet operators. */
  async activePage(query: ActiveQuery, now: number): Promise<ActivePage> {
    checkLimit(query.limit);
    const { where, values, add } = activeWhere(now);
    if (query.origin !== undefined) add((n) => `d.origin = ${n}`, query.origin);
    if (query.rule !== undefined) add((n) => `d.rule = ${n}`, query.rule);
    if (query.set !== undefined) add((n) => `d.set_name = ${n}`, query.set);
    if (query.since !== undefined) add((n) => `d.created_at >= ${n}`, query.since);
    // Overlap: a ban containing the target, or a ban inside it.
    if (query.target !== undefined)
      add((n) => `(d.target::inet >>= ${n}::inet OR d.target::inet << ${n}::inet)`, query.target.text);
    const filters = where.join(' AND ');
    const total = (
      await this.read('activePage', (q) =>
        q(
          `SELECT count(*)::int AS n FROM active a JOIN decisions d ON d.seq = a.seq WHERE ${filters}`,
          values,
        ),
      )
    ).rows[0].n as number;
    const pageWhere = [...where];
    const pageValues = [...values];
    if (query.cursor !== undefined) {
      const m = /^(\d{1,16})-(\d{1,16})$/.exec(query.cursor);
      if (!m)
        throw new RampartError('E_USAGE', 'cursor is not one this hub gave (pass the "next" of a page)');
      pageValues.push(Number(m[1]), Number(m[2]));
      pageWhere.push(`(d.created_at, d.seq) < ($${pageValues.length - 1}, $${pageValues.length})`);
    }
    pageValues.push(query.limit + 1);
    const rows = (
      await this.read('activePage', (q) =>
        q(
          `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq WHERE ${pageWhere.join(' AND ')}
           ORDER BY d.created_at DESC, d.seq DESC LIMIT $${pageValues.length}`,
          pageValues,
        ),
      )
    ).rows.map((x) => toDecision(x as DecisionRow));
    let next: string | null = null;
    if (rows.length > query.limit) {
      rows.length = query.limit;
      const last = rows[rows.length - 1]!;
      next = `${last.createdAt}-${last.seq}`;
    }
    return { items: rows, next, total };
  }

  /** Primary-key order; the family filter reads the decision row (the active table has no family). */
  async activeOrdered(query: ActiveOrderedQuery, now: number): Promise<Decision[]> {
    checkLimit(query.limit);
    const { where, values, add } = activeWhere(now);
    if (query.family !== undefined) add((n) => `d.family = ${n}`, query.family);
    if (query.set !== undefined) add((n) => `a.set_name = ${n}`, query.set);
    if (query.after !== undefined) {
      values.push(query.after.target, query.after.set);
      where.push(`(a.target, a.set_name) > ($${values.length - 1}, $${values.length})`);
    }
    values.push(query.limit);
    const r = await this.read('activeOrdered', (q) =>
      q(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq WHERE ${where.join(' AND ')}
         ORDER BY a.target, a.set_name LIMIT $${values.length}`,
        values,
      ),
    );
    return r.rows.map((x) => toDecision(x as DecisionRow));
  }

  async activeFor(target: string, set: string, now: number): Promise<Decision | undefined> {
    const r = await this.read('activeFor', (q) =>
      q(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.target = $1 AND a.set_name = $2 AND (a.expires_at IS NULL OR a.expires_at > $3)`,
        [target, set, now],
      ),
    );
    return r.rows[0] ? toDecision(r.rows[0] as DecisionRow) : undefined;
  }

  /** Two reads side by side on two pooled connections: about one round trip for a whole batch. */
  async lookUp(
    pairs: ReadonlyArray<{ target: string; set: string }>,
    now: number,
    opts: LookUpOptions = {},
  ): Promise<{ active: Array<Decision | undefined>; history: Map<string, number> }> {
    const targets = pairs.map((p) => p.target);
    // Array literals made here (pgArray): node-postgres's own conversion of 2,000 keys per bulk
    // slice quoted and escaped each with two regular expressions (ADR 0061).
    const [inForce, banned] = await Promise.all([
      this.read('lookUp', (q) =>
        q(PG_PROBES.inForce, [pgArray(targets), pgArray(pairs.map((p) => p.set)), now]),
      ),
      opts.history === false
        ? undefined
        : this.read('lookUp', (q) => q(PG_PROBES.banCounts, [pgArray([...new Set(targets)])])),
    ]);
    const byKey = new PairMap<Decision>();
    for (const row of inForce.rows) {
      const d = toDecision(row as DecisionRow);
      byKey.set(d.target, d.set, d);
    }
    return {
      active: pairs.map((p) => byKey.get(p.target, p.set)),
      history: new Map(banned?.rows.map((r) => [r.target as string, Number(r.count)])),
    };
  }

  async head(): Promise<number> {
    const r = await this.read('head', (q) => q('SELECT seq FROM log_head WHERE id = 1'));
    return r.rows[0].seq as number;
  }

  async oldestRetained(): Promise<number> {
    const r = await this.read('oldestRetained', (q) => q('SELECT pruned FROM log_head WHERE id = 1'));
    return (r.rows[0].pruned as number) + 1;
  }

  async prune(before: number, now: number): Promise<number> {
    return this.write('prune', () =>
      this.tx(async (q) => {
        await q('DELETE FROM active WHERE expires_at IS NOT NULL AND expires_at <= $1', [now]);
        const upTo = (await q('SELECT MAX(seq) AS seq FROM decisions WHERE created_at < $1', [before]))
          .rows[0].seq as number | null;
        if (upTo === null) return 0;
        await q('UPDATE log_head SET pruned = GREATEST(pruned, $1) WHERE id = 1', [upTo]);
        // A ban still in force keeps its log row: the active set points at it for snapshots.
        const del = await q(
          'DELETE FROM decisions d WHERE d.seq <= $1 AND NOT EXISTS (SELECT 1 FROM active a WHERE a.seq = d.seq)',
          [upTo],
        );
        return del.rowCount ?? 0;
      }),
    );
  }

  async addNode(name: string, joinSecretHash: string, now: number): Promise<NodeRecord> {
    const r = await this.write('addNode', () =>
      this.query(
        `INSERT INTO nodes (name, join_secret_hash, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET public_key = NULL, token_hash = NULL,
           join_secret_hash = excluded.join_secret_hash, created_at = excluded.created_at, removed_at = NULL,
           last_seq = 0, last_seen = NULL, version = NULL
         WHERE nodes.removed_at IS NOT NULL
         RETURNING *`,
        [name, joinSecretHash, now],
      ),
    );
    if (r.rowCount === 0) throw new RampartError('E_USAGE', `node ${name} already exists`);
    return toNode(r.rows[0] as NodeRow);
  }

  async getNode(name: string): Promise<NodeRecord | undefined> {
    const r = await this.read('getNode', (q) => q('SELECT * FROM nodes WHERE name = $1', [name]));
    return r.rows[0] ? toNode(r.rows[0] as NodeRow) : undefined;
  }

  async nodeByTokenHash(tokenHash: string): Promise<NodeRecord | undefined> {
    const r = await this.read('nodeByTokenHash', (q) =>
      q('SELECT * FROM nodes WHERE token_hash = $1 AND removed_at IS NULL', [tokenHash]),
    );
    return r.rows[0] ? toNode(r.rows[0] as NodeRow) : undefined;
  }

  async listNodes(): Promise<NodeRecord[]> {
    const r = await this.read('listNodes', (q) => q('SELECT * FROM nodes ORDER BY name'));
    return r.rows.map((x) => toNode(x as NodeRow));
  }

  async enrolNode(
    name: string,
    joinSecretHash: string,
    publicKey: string,
    tokenHash: string,
  ): Promise<boolean> {
    const r = await this.write('enrolNode', () =>
      this.query(
        `UPDATE nodes SET public_key = $1, token_hash = $2, join_secret_hash = NULL
         WHERE name = $3 AND join_secret_hash = $4 AND removed_at IS NULL`,
        [publicKey, tokenHash, name, joinSecretHash],
      ),
    );
    return r.rowCount === 1;
  }

  async removeNode(name: string, now: number): Promise<boolean> {
    const r = await this.write('removeNode', () =>
      this.query(
        'UPDATE nodes SET removed_at = $1, token_hash = NULL, join_secret_hash = NULL WHERE name = $2 AND removed_at IS NULL',
        [now, name],
      ),
    );
    return r.rowCount === 1;
  }

  async touchNode(
    name: string,
    seen: { lastSeq?: number; lastSeen: number; version?: string; reads?: string },
  ): Promise<void> {
    await this.write('touchNode', () =>
      this.query(
        `UPDATE nodes SET last_seen = $1, last_seq = COALESCE($2, last_seq), version = COALESCE($3, version),
           reads = COALESCE($5, reads)
         WHERE name = $4`,
        [seen.lastSeen, seen.lastSeq ?? null, seen.version ?? null, name, seen.reads ?? null],
      ),
    );
  }

  async allowAdd(entry: AllowEntry): Promise<void> {
    await this.write('allowAdd', () =>
      this.query(
        `INSERT INTO allowlist (cidr, comment, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (cidr) DO UPDATE SET comment = excluded.comment`,
        [entry.cidr, entry.comment, entry.createdAt],
      ),
    );
  }

  async allowRemove(cidr: string): Promise<boolean> {
    const r = await this.write('allowRemove', () =>
      this.query('DELETE FROM allowlist WHERE cidr = $1', [cidr]),
    );
    return r.rowCount === 1;
  }

  async allowList(): Promise<AllowEntry[]> {
    const r = await this.read('allowList', (q) => q('SELECT * FROM allowlist ORDER BY created_at, cidr'));
    return r.rows.map((x) => ({ cidr: x.cidr, comment: x.comment, createdAt: x.created_at }));
  }

  async recordBan(target: string, at: number): Promise<void> {
    await this.write('recordBan', () => recordBan((t, v) => this.query(t, v), target, at));
  }

  async banHistory(target: string): Promise<BanHistory> {
    const r = await this.read('banHistory', (q) =>
      q('SELECT count, last_at FROM ban_history WHERE target = $1', [target]),
    );
    const row = r.rows[0];
    return row ? { count: row.count, lastAt: row.last_at } : { count: 0, lastAt: null };
  }

  async addBouncer(name: string, keyHash: string, now: number): Promise<BouncerRecord> {
    const r = await this.write('addBouncer', () =>
      this.query(
        'INSERT INTO bouncers (name, key_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING *',
        [name, keyHash, now],
      ),
    );
    if (r.rowCount === 0) {
      throw new RampartError(
        'E_USAGE',
        `bouncer ${name} already exists (remove it first to issue a new key)`,
      );
    }
    return toBouncer(r.rows[0]);
  }

  async bouncerByKeyHash(keyHash: string): Promise<BouncerRecord | undefined> {
    const r = await this.read('bouncerByKeyHash', (q) =>
      q('SELECT * FROM bouncers WHERE key_hash = $1', [keyHash]),
    );
    return r.rows[0] ? toBouncer(r.rows[0]) : undefined;
  }

  async listBouncers(): Promise<BouncerRecord[]> {
    const r = await this.read('listBouncers', (q) => q('SELECT * FROM bouncers ORDER BY name'));
    return r.rows.map(toBouncer);
  }

  async removeBouncer(name: string): Promise<boolean> {
    const r = await this.write('removeBouncer', () =>
      this.query('DELETE FROM bouncers WHERE name = $1', [name]),
    );
    return r.rowCount === 1;
  }

  async touchBouncer(name: string, lastSeq: number, now: number): Promise<void> {
    await this.write('touchBouncer', () =>
      this.query('UPDATE bouncers SET last_seq = $1, last_pull = $2 WHERE name = $3', [lastSeq, now, name]),
    );
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.read('getMeta', (q) => q('SELECT value FROM meta WHERE key = $1', [key]));
    return r.rows[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.write('setMeta', () =>
      this.query(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        [key, value],
      ),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end().catch(() => undefined);
  }

  /**
   * One round trip: `rampart_append` (schema migration 4) advances the counter row and writes the
   * rows server-side, so the lock every hub's appends queue on is never held across the network.
   */
  private async appendIn(
    q: Query,
    inputs: Decision[],
    offences: Array<{ target: string; at: number }>,
  ): Promise<Decision[]> {
    // The last decision per (target, set) decides the active set: a later one in the batch wins.
    const last = new PairMap<number>();
    for (let i = 0; i < inputs.length; i++) last.set(inputs[i]!.target, inputs[i]!.set, i);
    const bans: Array<{ target: string; set: string; ord: number; expiresAt: number | null }> = [];
    const lifts: Array<{ target: string; set: string }> = [];
    for (const i of last.values()) {
      const d = inputs[i]!;
      if (d.action === 'ban') bans.push({ target: d.target, set: d.set, ord: i + 1, expiresAt: d.expiresAt });
      else lifts.push({ target: d.target, set: d.set });
    }
    const offended = new Map<string, { n: number; at: number }>();
    for (const o of offences) {
      const seen = offended.get(o.target);
      offended.set(o.target, { n: (seen?.n ?? 0) + 1, at: o.at });
    }
    const col = <K extends keyof DecisionInput>(k: K) => pgArray(inputs.map((d) => d[k] as PgElement));
    const r = await q(
      `SELECT rampart_append($1, $2::text[], $3::text[], $4::text[], $5::smallint[], $6::bigint[],
         $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[],
         $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::text[], $18::text[],
         $19::text[], $20::bigint[], $21::bigint[]) AS base`,
      [
        inputs.length,
        col('id'),
        col('action'),
        col('target'),
        col('family'),
        col('duration'),
        col('expiresAt'),
        col('reason'),
        col('rule'),
        col('origin'),
        col('createdAt'),
        col('set'),
        pgArray(bans.map((b) => b.target)),
        pgArray(bans.map((b) => b.set)),
        pgArray(bans.map((b) => b.ord)),
        pgArray(bans.map((b) => b.expiresAt)),
        pgArray(lifts.map((l) => l.target)),
        pgArray(lifts.map((l) => l.set)),
        pgArray([...offended.keys()]),
        pgArray([...offended.values()].map((o) => o.n)),
        pgArray([...offended.values()].map((o) => o.at)),
      ],
    );
    const base = r.rows[0].base as number;
    for (let i = 0; i < inputs.length; i++) inputs[i]!.seq = base + i + 1;
    return inputs;
  }

  private async migrate(): Promise<void> {
    await this.tx(async (q) => {
      await q('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
      await q('CREATE TABLE IF NOT EXISTS rampart_schema (version INTEGER NOT NULL)');
      const row = (await q('SELECT version FROM rampart_schema')).rows[0] as { version: number } | undefined;
      const current = row?.version ?? 0;
      if (current > PG_MIGRATIONS.length) {
        throw new RampartError(
          'E_STORE',
          `the store ${redact(this.o.url)} schema version ${current} is newer than this rampart (${PG_MIGRATIONS.length}); upgrade rampart`,
        );
      }
      for (let v = current; v < PG_MIGRATIONS.length; v++) await q(PG_MIGRATIONS[v]!);
      if (!row) await q('INSERT INTO rampart_schema (version) VALUES ($1)', [PG_MIGRATIONS.length]);
      else await q('UPDATE rampart_schema SET version = $1', [Math.max(current, PG_MIGRATIONS.length)]);
    });
  }

  private async tx<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    if (this.closed) throw new RampartError('E_STORE', 'the store is closed');
    const client = await this.pool.connect();
    // A connection killed while checked out emits 'error' on the client; the failing query
    // rejects too, and that is where it is handled.
    const ignore = () => undefined;
    client.on('error', ignore);
    const q: Query = (text, values) => client.query(text, values);
    let broken = false;
    try {
      await q('BEGIN');
      const out = await fn(q);
      await q('COMMIT');
      return out;
    } catch (err) {
      broken = isTransient(err);
      await q('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      // A connection that failed mid-transaction is discarded, not returned to the pool.
      client.off('error', ignore);
      client.release(broken);
    }
  }

  private query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    if (this.closed) return Promise.reject(new RampartError('E_STORE', 'the store is closed'));
    return this.pool.query(text, values);
  }

  /** Reads are idempotent: retried like writes after a lost connection. */
  private read(what: string, fn: (q: Query) => Promise<pg.QueryResult>): Promise<pg.QueryResult> {
    return this.write(what, () => fn((t, v) => this.query(t, v)));
  }

  /** Runs an idempotent statement, retrying transient failures (server restart, failover). */
  private async write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let attempt = 0;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof RampartError) throw err;
        if (!isTransient(err) || this.closed || ++attempt > (this.o.retries ?? 20))
          throw storeError(what, err);
        await this.backoff(attempt);
      }
    }
  }

  private backoff(attempt: number): Promise<void> {
    const ms = Math.min(2_000, (this.o.retryMs ?? 100) * 2 ** (attempt - 1));
    return new Promise((r) => setTimeout(r, ms));
  }
}

function recordBan(q: Query, target: string, at: number): Promise<pg.QueryResult> {
  return q(
    `INSERT INTO ban_history (target, count, last_at) VALUES ($1, 1, $2)
     ON CONFLICT (target) DO UPDATE SET count = ban_history.count + 1, last_at = excluded.last_at`,
    [target, at],
  );
}

function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string')
    return /Connection terminated|not queryable|timeout exceeded when trying to connect/i.test(
      String((err as Error)?.message),
    );
  return TRANSIENT.test(code) || TRANSIENT_NODE.has(code);
}

function storeError(what: string, err: unknown): RampartError {
  if (err instanceof RampartError) return err;
  return new RampartError('E_STORE', `store ${what} failed: ${(err as Error).message}`, { cause: err });
}

function toBouncer(r: Record<string, unknown>): BouncerRecord {
  return {
    name: r.name as string,
    keyHash: r.key_hash as string,
    createdAt: Number(r.created_at),
    lastPull: r.last_pull === null ? null : Number(r.last_pull),
    lastSeq: Number(r.last_seq),
  };
}

/** Fills `buckets` counts from the (bucket index, count) rows of a GROUP BY. */
function bucketCounts(rows: Array<{ b: number; n: number }>, buckets: number): number[] {
  const out = new Array<number>(buckets).fill(0);
  for (const r of rows) if (r.b >= 0 && r.b < buckets) out[r.b] = r.n;
  return out;
}

/**
 * The WHERE clause of a query over the bans in force at `now`: `add` appends a condition whose
 * value becomes the next `$n` parameter.
 */
function activeWhere(now: number) {
  const where = ['(a.expires_at IS NULL OR a.expires_at > $1)'];
  const values: unknown[] = [now];
  const add = (sql: (n: string) => string, v: unknown) => {
    values.push(v);
    where.push(sql(`$${values.length}`));
  };
  return { where, values, add };
}

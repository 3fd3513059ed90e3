import type Database from 'better-sqlite3';
import type { Decision } from '../core/decision.js';
import { RampartError } from '../core/errors.js';
import { decisionId } from './decision-id.js';
import { openSqlite } from './open-sqlite.js';
import { PairMap } from './pair-map.js';
import { type DecisionRow, type NodeRow, toDecision, toNode } from './rows.js';
import { SqliteActiveViews } from './sqlite-active.js';
import { AppendRows } from './sqlite-append.js';
import { SqliteBouncers } from './sqlite-bouncers.js';
import { MIGRATIONS } from './sqlite-schema.js';
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

/** Targets per statement of `lookUp`, and the statement's list of them. */
const LOOK_UP = 64;
const LOOK_UP_LIST = Array.from({ length: LOOK_UP }, () => '?').join(', ');

/**
 * The embedded store: one SQLite file in WAL mode. better-sqlite3 is synchronous, so each method
 * runs to completion before another starts in this process; appends use BEGIN IMMEDIATE so a
 * second process on the same file waits for the write lock instead of reading a stale head.
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly bouncers: SqliteBouncers;
  private readonly stmt;
  private readonly views: SqliteActiveViews;
  private readonly appendTx: (
    inputs: DecisionInput[],
    offences: Array<{ target: string; at: number }>,
  ) => Decision[];

  constructor(file: string) {
    try {
      this.db = openSqlite(file);
      this.db.pragma('foreign_keys = ON');
      migrate(this.db);
    } catch (err) {
      throw new RampartError('E_STORE', `cannot open the store ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const db = this.db;
    this.bouncers = new SqliteBouncers(db);
    this.stmt = {
      head: db.prepare<[], { seq: number }>('SELECT seq FROM log_head WHERE id = 1'),
      setHead: db.prepare<[number]>('UPDATE log_head SET seq = ? WHERE id = 1'),
      bySeqs: db.prepare<[string], DecisionRow>(
        'SELECT * FROM decisions WHERE seq IN (SELECT value FROM json_each(?))',
      ),
      deleteActive: db.prepare<[string, string]>('DELETE FROM active WHERE target = ? AND set_name = ?'),
      since: db.prepare<[number, number], DecisionRow>(
        'SELECT * FROM decisions WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      active: db.prepare<[number], DecisionRow>(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.expires_at IS NULL OR a.expires_at > ? ORDER BY a.seq`,
      ),
      activeForMany: db.prepare<[Array<string | number | null>], DecisionRow>(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.target IN (${LOOK_UP_LIST})
           AND (a.expires_at IS NULL OR a.expires_at > ?)`,
      ),
      banCountsOf: db.prepare<[Array<string | number | null>], { target: string; count: number }>(
        `SELECT target, count FROM ban_history WHERE target IN (${LOOK_UP_LIST})`,
      ),
      activeFor: db.prepare<[string, string, number], DecisionRow>(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq
         WHERE a.target = ? AND a.set_name = ? AND (a.expires_at IS NULL OR a.expires_at > ?)`,
      ),
      // One count per bucket over the covering index: a GROUP BY on the bucket number sorted
      // the window's rows in a temporary B-tree, three to five times slower at 100,000 bans.
      banCount: db.prepare<[number, number], { n: number }>(
        `SELECT count(*) AS n FROM decisions WHERE created_at >= ? AND created_at < ? AND action = 'ban'`,
      ),
      pruned: db.prepare<[], { pruned: number }>('SELECT pruned FROM log_head WHERE id = 1'),
      pruneActive: db.prepare<[number]>(
        'DELETE FROM active WHERE expires_at IS NOT NULL AND expires_at <= ?',
      ),
      pruneUpTo: db.prepare<[number], { seq: number | null }>(
        'SELECT MAX(seq) AS seq FROM decisions WHERE created_at < ?',
      ),
      // A ban still in force keeps its log row: the active set points at it for snapshots.
      pruneLog: db.prepare<[number]>(
        'DELETE FROM decisions WHERE seq <= ? AND seq NOT IN (SELECT seq FROM active)',
      ),
      setPruned: db.prepare<[number]>('UPDATE log_head SET pruned = MAX(pruned, ?) WHERE id = 1'),
      addNode: db.prepare<[string, string, number]>(
        `INSERT INTO nodes (name, join_secret_hash, created_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET public_key = NULL, token_hash = NULL,
           join_secret_hash = excluded.join_secret_hash, created_at = excluded.created_at, removed_at = NULL,
           last_seq = 0, last_seen = NULL, version = NULL
         WHERE nodes.removed_at IS NOT NULL`,
      ),
      getNode: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE name = ?'),
      nodeByToken: db.prepare<[string], NodeRow>(
        'SELECT * FROM nodes WHERE token_hash = ? AND removed_at IS NULL',
      ),
      listNodes: db.prepare<[], NodeRow>('SELECT * FROM nodes ORDER BY name'),
      enrol: db.prepare<[string, string, string, string]>(
        `UPDATE nodes SET public_key = ?, token_hash = ?, join_secret_hash = NULL
         WHERE name = ? AND join_secret_hash = ? AND removed_at IS NULL`,
      ),
      removeNode: db.prepare<[number, string]>(
        'UPDATE nodes SET removed_at = ?, token_hash = NULL, join_secret_hash = NULL WHERE name = ? AND removed_at IS NULL',
      ),
      touchNode: db.prepare(
        `UPDATE nodes SET last_seen = @lastSeen, last_seq = COALESCE(@lastSeq, last_seq),
           version = COALESCE(@version, version), reads = COALESCE(@reads, reads) WHERE name = @name`,
      ),
      allowAdd: db.prepare<[string, string, number]>(
        `INSERT INTO allowlist (cidr, comment, created_at) VALUES (?, ?, ?)
         ON CONFLICT (cidr) DO UPDATE SET comment = excluded.comment`,
      ),
      allowRemove: db.prepare<[string]>('DELETE FROM allowlist WHERE cidr = ?'),
      allowList: db.prepare<[], { cidr: string; comment: string; created_at: number }>(
        'SELECT * FROM allowlist ORDER BY created_at, cidr',
      ),
      recordBan: db.prepare<[string, number]>(
        `INSERT INTO ban_history (target, count, last_at) VALUES (?, 1, ?)
         ON CONFLICT (target) DO UPDATE SET count = count + 1, last_at = excluded.last_at`,
      ),
      banHistory: db.prepare<[string], { count: number; last_at: number }>(
        'SELECT count, last_at FROM ban_history WHERE target = ?',
      ),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
    };
    this.views = new SqliteActiveViews(db);
    const rows = new AppendRows(db);
    const tx = db.transaction(
      (inputs: DecisionInput[], offences: Array<{ target: string; at: number }>): Decision[] => {
        let seq = this.stmt.head.get()!.seq;
        rows.clear();
        const out: Decision[] = [];
        for (const input of inputs) {
          seq++;
          // Field by field rather than spread: the bulk path makes one per decision (ADR 0048).
          const d: Decision = {
            id: input.id ?? decisionId(),
            seq,
            action: input.action,
            target: input.target,
            family: input.family,
            duration: input.duration,
            expiresAt: input.expiresAt,
            reason: input.reason,
            rule: input.rule,
            origin: input.origin,
            createdAt: input.createdAt,
            set: input.set,
          };
          rows.decision(d);
          if (d.action === 'ban') rows.active(d);
          else {
            // In log order: an unban after a ban of the same target in this batch deletes it.
            rows.flushActive();
            this.stmt.deleteActive.run(d.target, d.set);
          }
          out.push(d);
        }
        rows.flush();
        this.stmt.setHead.run(seq);
        for (const o of offences) rows.offence(o.target, o.at);
        rows.flush();
        return out;
      },
    );
    this.appendTx = (inputs, offences) => tx.immediate(inputs, offences);
  }

  async append(
    inputs: DecisionInput[],
    offences: Array<{ target: string; at: number }> = [],
  ): Promise<Decision[]> {
    if (inputs.length === 0 && offences.length === 0) return [];
    return this.guard(() => this.appendTx(inputs, offences));
  }

  async since(seq: number, limit: number): Promise<Decision[]> {
    return this.stmt.since.all(seq, limit).map(toDecision);
  }

  async active(now: number): Promise<Decision[]> {
    return this.stmt.active.all(now).map(toDecision);
  }

  async countActive(now: number): Promise<ActiveCounts> {
    return this.views.count(now);
  }

  async activePage(query: ActiveQuery, now: number): Promise<ActivePage> {
    return this.db.transaction(() => {
      const { seqs, next, total } = this.views.page(query, now);
      const bySeq = new Map(this.stmt.bySeqs.all(JSON.stringify(seqs)).map((r) => [r.seq, toDecision(r)]));
      return { items: seqs.map((s) => bySeq.get(s)!), next, total };
    })();
  }

  async activeOrdered(query: ActiveOrderedQuery, now: number): Promise<Decision[]> {
    return this.views.ordered(query, now).map(toDecision);
  }

  async banCounts(from: number, bucketMs: number, buckets: number): Promise<number[]> {
    return this.db.transaction(() =>
      Array.from(
        { length: buckets },
        (_, i) => this.stmt.banCount.get(from + i * bucketMs, from + (i + 1) * bucketMs)!.n,
      ),
    )();
  }

  /**
   * `activeFor` and the ban counts of a whole batch, LOOK_UP targets per statement: a bulk import
   * read the active set one statement per decision, an eighth of the hub's CPU on that path
   * (ADR 0057). Unused places in a statement's list are NULL, which matches no target.
   */
  async lookUp(
    pairs: ReadonlyArray<{ target: string; set: string }>,
    now: number,
    opts: LookUpOptions = {},
  ): Promise<{ active: Array<Decision | undefined>; history: Map<string, number> }> {
    const byKey = new PairMap<Decision>();
    const history = new Map<string, number>();
    const targets = [...new Set(pairs.map((p) => p.target))];
    const params: Array<string | number | null> = new Array(LOOK_UP + 1);
    this.db.transaction(() => {
      for (let at = 0; at < targets.length; at += LOOK_UP) {
        for (let i = 0; i < LOOK_UP; i++) params[i] = targets[at + i] ?? null;
        params[LOOK_UP] = now;
        for (const row of this.stmt.activeForMany.all(params)) {
          const d = toDecision(row);
          byKey.set(d.target, d.set, d);
        }
        if (opts.history === false) continue;
        for (const row of this.stmt.banCountsOf.all(params.slice(0, LOOK_UP)))
          history.set(row.target, row.count);
      }
    })();
    return { active: pairs.map((p) => byKey.get(p.target, p.set)), history };
  }

  async activeFor(target: string, set: string, now: number): Promise<Decision | undefined> {
    const r = this.stmt.activeFor.get(target, set, now);
    return r ? toDecision(r) : undefined;
  }

  async head(): Promise<number> {
    return this.stmt.head.get()!.seq;
  }

  async oldestRetained(): Promise<number> {
    return this.stmt.pruned.get()!.pruned + 1;
  }

  async prune(before: number, now: number): Promise<number> {
    return this.guard(() =>
      this.db.transaction(() => {
        this.stmt.pruneActive.run(now);
        const upTo = this.stmt.pruneUpTo.get(before)?.seq;
        if (upTo === null || upTo === undefined) return 0;
        this.stmt.setPruned.run(upTo);
        return this.stmt.pruneLog.run(upTo).changes;
      })(),
    );
  }

  async addNode(name: string, joinSecretHash: string, now: number): Promise<NodeRecord> {
    const changes = this.guard(() => this.stmt.addNode.run(name, joinSecretHash, now).changes);
    if (changes === 0) throw new RampartError('E_USAGE', `node ${name} already exists`);
    return toNode(this.stmt.getNode.get(name)!);
  }

  async getNode(name: string): Promise<NodeRecord | undefined> {
    const r = this.stmt.getNode.get(name);
    return r ? toNode(r) : undefined;
  }

  async nodeByTokenHash(tokenHash: string): Promise<NodeRecord | undefined> {
    const r = this.stmt.nodeByToken.get(tokenHash);
    return r ? toNode(r) : undefined;
  }

  async listNodes(): Promise<NodeRecord[]> {
    return this.stmt.listNodes.all().map(toNode);
  }

  async enrolNode(
    name: string,
    joinSecretHash: string,
    publicKey: string,
    tokenHash: string,
  ): Promise<boolean> {
    return this.guard(() => this.stmt.enrol.run(publicKey, tokenHash, name, joinSecretHash).changes === 1);
  }

  async removeNode(name: string, now: number): Promise<boolean> {
    return this.guard(() => this.stmt.removeNode.run(now, name).changes === 1);
  }

  async touchNode(
    name: string,
    seen: { lastSeq?: number; lastSeen: number; version?: string; reads?: string },
  ): Promise<void> {
    this.guard(() =>
      this.stmt.touchNode.run({
        name,
        lastSeen: seen.lastSeen,
        lastSeq: seen.lastSeq ?? null,
        version: seen.version ?? null,
        reads: seen.reads ?? null,
      }),
    );
  }

  async allowAdd(entry: AllowEntry): Promise<void> {
    this.guard(() => this.stmt.allowAdd.run(entry.cidr, entry.comment, entry.createdAt));
  }

  async allowRemove(cidr: string): Promise<boolean> {
    return this.guard(() => this.stmt.allowRemove.run(cidr).changes === 1);
  }

  async allowList(): Promise<AllowEntry[]> {
    return this.stmt.allowList
      .all()
      .map((r) => ({ cidr: r.cidr, comment: r.comment, createdAt: r.created_at }));
  }

  async recordBan(target: string, at: number): Promise<void> {
    this.guard(() => this.stmt.recordBan.run(target, at));
  }

  async banHistory(target: string): Promise<BanHistory> {
    const r = this.stmt.banHistory.get(target);
    return r ? { count: r.count, lastAt: r.last_at } : { count: 0, lastAt: null };
  }

  async addBouncer(name: string, keyHash: string, now: number): Promise<BouncerRecord> {
    return this.guard(() => this.bouncers.add(name, keyHash, now));
  }

  async bouncerByKeyHash(keyHash: string): Promise<BouncerRecord | undefined> {
    return this.bouncers.byKeyHash(keyHash);
  }

  async listBouncers(): Promise<BouncerRecord[]> {
    return this.bouncers.list();
  }

  async removeBouncer(name: string): Promise<boolean> {
    return this.guard(() => this.bouncers.remove(name));
  }

  async touchBouncer(name: string, lastSeq: number, now: number): Promise<void> {
    this.guard(() => this.bouncers.touch(name, lastSeq, now));
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.stmt.getMeta.get(key)?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.guard(() => this.stmt.setMeta.run(key, value));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  /** Translates driver errors (disk full, locked) into E_STORE at the boundary, keeping the cause. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof RampartError) throw err;
      throw new RampartError('E_STORE', `store write failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `schema version ${current} is newer than this rampart (${MIGRATIONS.length}); upgrade rampart`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      const step = MIGRATIONS[v]!;
      if (typeof step === 'string') db.exec(step);
      else step(db);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

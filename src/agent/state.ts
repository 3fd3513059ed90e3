import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { RampartError } from '../core/errors.js';
import type { PositionStore } from '../sources/types.js';
import { openSqlite } from '../store/open-sqlite.js';
import { placeholders, RowBuffer } from '../store/row-buffer.js';

/** One ban the agent holds, from the hub's log (`seq` > 0) or from its own detection (`seq` 0). */
/** Where the next page of active bans starts: after this primary key. */
export interface ActivePageCursor {
  target: string;
  set: string;
}

/** Before every key (targets are never empty). */
export const FIRST_PAGE: ActivePageCursor = { target: '', set: '' };

export interface ActiveBan {
  target: string;
  set: string;
  /** Epoch ms; null = permanent. */
  expiresAt: number | null;
  seq: number;
  origin: string;
}

/** One undelivered report, in the order it was made. */
export interface OutboxItem {
  id: number;
  body: unknown;
  createdAt: number;
}

const SCHEMA_VERSION = 3;

/** `active`'s upsert of one ban, for `values` rows (local bans, snapshots: one at a time). */
const UPSERT = (values: string) =>
  `INSERT INTO active (target, "set", expires_at, seq, origin) VALUES ${values} ` +
  'ON CONFLICT(target, "set") DO UPDATE SET expires_at = excluded.expires_at, seq = excluded.seq, origin = excluded.origin';
const ROW = placeholders(5);

/**
 * Hub bans appended to the journal, `values` rows at a time by a RowBuffer (one statement per ban
 * bound its parameters and stepped the program once per row, and 10 agents pay it for every
 * decision: ADR 0048). Rowids only grow, so every append lands on the table's last page.
 */
const JOURNAL = (values: string) =>
  `INSERT INTO journal (target, "set", expires_at, seq, origin) VALUES ${values}`;

/**
 * The journal into `active` in key order, then emptied (ADR 0079). For one key the later row
 * (higher rowid) comes later and wins, as one upsert per ban in arrival order would end.
 * `WHERE true` keeps SQLite from reading ON CONFLICT as part of the SELECT.
 */
const FOLD =
  'INSERT INTO active (target, "set", expires_at, seq, origin) ' +
  'SELECT target, "set", expires_at, seq, origin FROM journal WHERE true ORDER BY target, "set", rowid ' +
  'ON CONFLICT(target, "set") DO UPDATE SET expires_at = excluded.expires_at, seq = excluded.seq, origin = excluded.origin';

/**
 * Journal rows that fold it into `active` there and then, inside the batch that wrote them: a bulk
 * load folds every 20,000 bans (36 ms at 120,000 bans held, measured), and a snapshot of a million
 * never makes a journal, or a sort, of a million.
 */
export const FOLD_ROWS = 20_000;

/**
 * A journal is folded once this long passed without a batch, unless a read folded it first: a
 * quiet agent's next local ban then finds `active` whole, instead of folding a bulk load's tail on
 * its way to the kernel. During a flood only FOLD_ROWS folds: smaller folds cost more per ban.
 */
const FOLD_IDLE_MS = 1_000;

const MIGRATIONS = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE active (
     target TEXT NOT NULL, "set" TEXT NOT NULL, expires_at INTEGER, seq INTEGER NOT NULL,
     origin TEXT NOT NULL, PRIMARY KEY (target, "set"));
   CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE positions (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 2: `active` keyed by its primary key alone (WITHOUT ROWID): an upsert wrote a rowid table and
  // a separate primary-key index, two B-trees per decision (ADR 0044). Rows are copied over.
  `CREATE TABLE active_v2 (
     target TEXT NOT NULL, "set" TEXT NOT NULL, expires_at INTEGER, seq INTEGER NOT NULL,
     origin TEXT NOT NULL, PRIMARY KEY (target, "set")) WITHOUT ROWID;
   INSERT INTO active_v2 (target, "set", expires_at, seq, origin)
     SELECT target, "set", expires_at, seq, origin FROM active;
   DROP TABLE active;
   ALTER TABLE active_v2 RENAME TO active;`,
  // 3: hub bans are appended to `journal` and folded into `active` in key order (ADR 0079). An
  // upsert per ban into `active`, keyed by address, dirtied a page of it per ban: a flood of
  // scattered addresses made each commit write one WAL page per ban.
  `CREATE TABLE journal (
     target TEXT NOT NULL, "set" TEXT NOT NULL, expires_at INTEGER, seq INTEGER NOT NULL,
     origin TEXT NOT NULL);`,
];

/**
 * The agent's durable memory (DIR/agent/agent.db): the active bans it must enforce, the last hub
 * `seq` it applied, the outbox of reports not yet delivered and the log sources' resume points.
 * A restart re-applies `active()` to the firewall before touching the network.
 */
export class AgentState {
  readonly positions: PositionStore;
  private readonly db: Database.Database;
  private readonly stmt;
  private closed = false;
  /**
   * `last_seq` as committed, or as written inside the batch in flight: read per decision, so it
   * lives in memory; the meta row is written once per outermost batch (ADR 0033).
   */
  private seq: number;
  /** Nesting depth of `batch` (0: no transaction of ours is open). */
  private depth = 0;
  /** One transaction wrapper for every batch (better-sqlite3 makes nested calls savepoints). */
  private readonly tx: (fn: () => unknown) => unknown;
  /**
   * Hub bans of the batch in flight not written yet (`applyHubBan`): appended to the journal a
   * statement's worth at a time, and the rest before anything else reads or writes `active` and
   * before the batch ends, so they commit with `last_seq` as before.
   */
  private readonly held: RowBuffer;
  /**
   * Rows in `journal` (ADR 0079): hub bans not folded into `active` yet. Every read of `active`
   * and every other write to it folds them first (`settle`), so nothing outside this class sees
   * the journal.
   */
  private journalRows: number;
  private foldTimer: NodeJS.Timeout | undefined;

  constructor(file: string) {
    try {
      this.db = openSqlite(file);
      this.migrate();
    } catch (err) {
      if (err instanceof RampartError) throw err;
      throw new RampartError('E_STORE', `cannot open agent state ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const db = this.db;
    this.stmt = {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      upsert: db.prepare(UPSERT(ROW)),
      fold: db.prepare(FOLD),
      emptyJournal: db.prepare('DELETE FROM journal'),
      journalRows: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM journal'),
      remove: db.prepare('DELETE FROM active WHERE target = ? AND "set" = ?'),
      active: db.prepare<
        [number],
        { target: string; set: string; expires_at: number | null; seq: number; origin: string }
      >(
        'SELECT target, "set", expires_at, seq, origin FROM active WHERE expires_at IS NULL OR expires_at > ? ORDER BY seq, target',
      ),
      // Pages in primary-key order (the table is WITHOUT ROWID: its B-tree is that order), so no
      // sort of the whole table (ORDER BY seq, target sorts a million rows in memory,
      // temp_store = MEMORY) and no cursor held between pages.
      page: db.prepare<
        [string, string, number, number],
        { target: string; set: string; expires_at: number | null; seq: number; origin: string }
      >(
        'SELECT target, "set", expires_at, seq, origin FROM active WHERE (target, "set") > (?, ?) AND (expires_at IS NULL OR expires_at > ?) ORDER BY target, "set" LIMIT ?',
      ),
      get: db.prepare<[string, string], { expires_at: number | null; seq: number; origin: string }>(
        'SELECT expires_at, seq, origin FROM active WHERE target = ? AND "set" = ?',
      ),
      countBySet: db.prepare<[number], { set: string; v6: number; n: number }>(
        `SELECT "set", instr(target, ':') > 0 AS v6, count(*) AS n FROM active
         WHERE expires_at IS NULL OR expires_at > ? GROUP BY "set", v6`,
      ),
      count: db.prepare<[number], { n: number }>(
        'SELECT count(*) AS n FROM active WHERE expires_at IS NULL OR expires_at > ?',
      ),
      prune: db.prepare('DELETE FROM active WHERE expires_at IS NOT NULL AND expires_at <= ?'),
      push: db.prepare('INSERT INTO outbox (body, created_at) VALUES (?, ?)'),
      peek: db.prepare<[number], { id: number; body: string; created_at: number }>(
        'SELECT id, body, created_at FROM outbox ORDER BY id LIMIT ?',
      ),
      ack: db.prepare('DELETE FROM outbox WHERE id = ?'),
      outboxSize: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox'),
      getPos: db.prepare<[string], { value: string }>('SELECT value FROM positions WHERE key = ?'),
      setPos: db.prepare(
        'INSERT INTO positions (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
    };
    this.held = new RowBuffer(db, 5, ROW, JOURNAL);
    this.journalRows = this.stmt.journalRows.get()!.n;
    this.seq = Number(this.stmt.getMeta.get('last_seq')?.value ?? 0);
    this.tx = db.transaction((fn: () => unknown) => fn());
    this.positions = {
      get: (key) => this.stmt.getPos.get(key)?.value,
      set: (key, value) => {
        this.stmt.setPos.run(key, value);
      },
    };
  }

  /** Opens (creating if needed) DIR/agent/agent.db. */
  static open(agentDir: string): AgentState {
    mkdirSync(agentDir, { recursive: true, mode: 0o700 });
    return new AgentState(join(agentDir, 'agent.db'));
  }

  /** The last hub `seq` applied (0 before the first); inside a batch, the batch's latest. */
  lastSeq(): number {
    return this.seq;
  }

  /**
   * Records a hub decision's effect and advances `lastSeq`. Alone it is one transaction; inside
   * `batch` it is one row write, and `last_seq` is written once when the batch commits (a savepoint
   * and a meta write per decision were three quarters of the agent's intake: ADR 0033). Either way
   * the row and `last_seq` become durable in the same commit, never one without the other.
   */
  applyHub(
    seq: number,
    change: { ban: ActiveBan } | { unban: { target: string; set: string } } | null,
  ): void {
    if (this.depth > 0) {
      this.write(change);
      this.seq = seq;
      return;
    }
    this.batch(() => {
      this.write(change);
      this.seq = seq;
    });
  }

  /**
   * `applyHub(seq, { ban })` without the two objects per call: the bus path's call for every ban
   * it takes (ADR 0044). The ban's own seq is `seq`.
   */
  applyHubBan(seq: number, target: string, set: string, expiresAt: number | null, origin: string): void {
    if (this.depth > 0) {
      this.hold(target, set, expiresAt, seq, origin);
      this.seq = seq;
      return;
    }
    this.batch(() => this.applyHubBan(seq, target, set, expiresAt, origin));
  }

  /** One hub ban for the journal, in arrival order (the fold keeps that order per key). */
  private hold(target: string, set: string, expiresAt: number | null, seq: number, origin: string): void {
    const held = this.held;
    held.put(target);
    held.put(set);
    held.put(expiresAt);
    held.put(seq);
    held.put(origin);
    held.rowDone();
    if (++this.journalRows >= FOLD_ROWS) this.fold();
  }

  /**
   * Runs `fn` in one transaction: a batch of decisions costs one commit (and its fsyncs) and one
   * `last_seq` write instead of one each. Calls nest (inner ones become savepoints); a throw rolls
   * back what it covered, `lastSeq()` included, so catch-up fetches those decisions again.
   */
  batch<T>(fn: () => T): T {
    const before = this.seq;
    const outermost = this.depth === 0;
    // The enclosing batch's held rows belong to it, not to this savepoint: written before it
    // opens, so its rollback cannot take them.
    this.writeHeld();
    this.depth++;
    try {
      const result = this.tx(() => {
        const out = fn();
        this.writeHeld();
        if (outermost && this.seq !== before) this.stmt.setMeta.run('last_seq', String(this.seq));
        return out;
      }) as T;
      if (outermost) this.foldLater();
      return result;
    } catch (err) {
      // Rolled back with the transaction (or savepoint) they were part of.
      this.held.clear();
      this.seq = before;
      // A fold inside may have been undone with it: the journal's size is read again.
      try {
        if (!this.closed) this.journalRows = this.stmt.journalRows.get()!.n;
      } catch {
        // The database itself failed: `err` says why, and the next batch reads the size again.
      }
      throw err;
    } finally {
      this.depth--;
    }
  }

  /** Appends the held hub bans (see `held`) to the journal. */
  private writeHeld(): void {
    this.held.flush();
  }

  /**
   * Makes `active` whole: the held bans and the journal folded into it. Every other statement on
   * `active` comes after this.
   */
  private settle(): void {
    this.writeHeld();
    if (this.journalRows > 0) this.fold();
  }

  /** Folds the journal once FOLD_IDLE_MS pass without another batch (each batch restarts the wait). */
  private foldLater(): void {
    if (this.journalRows === 0) return;
    if (this.foldTimer !== undefined) {
      this.foldTimer.refresh();
      return;
    }
    this.foldTimer = setTimeout(() => {
      this.foldTimer = undefined;
      if (this.closed || this.depth > 0) return;
      try {
        this.settle();
      } catch {
        // A full disk or a locked file: the journal stays, and the next read folds it or says why.
      }
    }, FOLD_IDLE_MS);
    this.foldTimer.unref();
  }

  /** The journal into `active`, in one transaction (or in the caller's). */
  private fold(): void {
    this.tx(() => {
      this.writeHeld();
      this.stmt.fold.run();
      this.stmt.emptyJournal.run();
    });
    this.journalRows = 0;
  }

  private write(change: { ban: ActiveBan } | { unban: { target: string; set: string } } | null): void {
    if (change === null) return;
    if ('ban' in change) {
      const b = change.ban;
      this.hold(b.target, b.set, b.expiresAt, b.seq, b.origin);
    } else {
      this.settle();
      this.stmt.remove.run(change.unban.target, change.unban.set);
    }
  }

  /** Replaces every ban with a snapshot from the hub and jumps to its head. Local bans are kept. */
  replaceWithSnapshot(bans: ActiveBan[], head: number): void {
    this.batch(() => {
      this.settle();
      this.db.prepare('DELETE FROM active WHERE seq > 0').run();
      for (const b of bans) this.write({ ban: b });
      this.seq = head;
    });
  }

  /** A ban from this agent's own detection, enforced before the hub answers. */
  addLocal(ban: Omit<ActiveBan, 'seq'>): void {
    this.settle();
    const existing = this.stmt.get.get(ban.target, ban.set);
    // A hub decision for the same target outranks a local one: keep its seq and expiry.
    if (
      existing &&
      existing.seq > 0 &&
      (existing.expires_at === null || existing.expires_at >= (ban.expiresAt ?? Infinity))
    ) {
      return;
    }
    this.stmt.upsert.run(ban.target, ban.set, ban.expiresAt, existing?.seq ?? 0, ban.origin);
  }

  get(target: string, set: string): ActiveBan | undefined {
    this.settle();
    const r = this.stmt.get.get(target, set);
    return r ? { target, set, expiresAt: r.expires_at, seq: r.seq, origin: r.origin } : undefined;
  }

  /** Bans still in force at `now`. */
  active(now = Date.now()): ActiveBan[] {
    this.settle();
    return this.stmt.active.all(now).map((r) => ({
      target: r.target,
      set: r.set,
      expiresAt: r.expires_at,
      seq: r.seq,
      origin: r.origin,
    }));
  }

  /**
   * Bans still in force at `now`, one row at a time: a million bans never exist as objects at
   * once. The connection is busy until the loop ends, so consume it without awaiting in between
   * (any other statement on this state throws meanwhile).
   */
  *eachActive(now = Date.now()): Generator<ActiveBan> {
    this.settle();
    for (const r of this.stmt.active.iterate(now))
      yield { target: r.target, set: r.set, expiresAt: r.expires_at, seq: r.seq, origin: r.origin };
  }

  /**
   * Up to `limit` bans in force at `now` after position `after` (0 to start), with the position to
   * pass for the next page. Bans written between pages are seen when they land after the position
   * reached (an update keeps its place); none is held open meanwhile.
   */
  activePage(
    after: ActivePageCursor,
    now: number,
    limit: number,
  ): { bans: ActiveBan[]; next: ActivePageCursor } {
    this.settle();
    const bans: ActiveBan[] = [];
    let next = after;
    for (const r of this.stmt.page.iterate(after.target, after.set, now, limit)) {
      bans.push({ target: r.target, set: r.set, expiresAt: r.expires_at, seq: r.seq, origin: r.origin });
      next = { target: r.target, set: r.set };
    }
    return { bans, next };
  }

  activeCount(now = Date.now()): number {
    this.settle();
    return this.stmt.count.get(now)!.n;
  }

  /**
   * Bans in force per logical set and family: what the kernel sets hold, from this agent's own
   * record (reading a big kernel set back is what must never happen; DESIGN.md section 5).
   */
  countBySet(now = Date.now()): Array<{ set: string; family: 4 | 6; n: number }> {
    this.settle();
    return this.stmt.countBySet.all(now).map((r) => ({ set: r.set, family: r.v6 ? 6 : 4, n: r.n }));
  }

  /** Forgets expired bans (the kernel timeout already dropped them). Returns how many. */
  pruneExpired(now = Date.now()): number {
    this.settle();
    return this.stmt.prune.run(now).changes;
  }

  /** Appends a report to the outbox; it stays until `ack`. */
  enqueue(body: unknown, now = Date.now()): number {
    return Number(this.stmt.push.run(JSON.stringify(body), now).lastInsertRowid);
  }

  /** The oldest undelivered reports, in order. */
  peek(limit = 100): OutboxItem[] {
    return this.stmt.peek
      .all(limit)
      .map((r) => ({ id: r.id, body: JSON.parse(r.body), createdAt: r.created_at }));
  }

  ack(id: number): void {
    this.stmt.ack.run(id);
  }

  outboxSize(): number {
    return this.stmt.outboxSize.get()!.n;
  }

  getMeta(key: string): string | undefined {
    return this.stmt.getMeta.get(key)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt.setMeta.run(key, value);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.foldTimer);
    this.db.close();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new RampartError(
        'E_STORE',
        `agent state schema ${version} is newer than this rampart (${SCHEMA_VERSION})`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }
}

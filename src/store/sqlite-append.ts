import type Database from 'better-sqlite3';
import type { Decision } from '../core/decision.js';
import { addressKey } from './address-key.js';

/**
 * Rows per multi-row statement. One statement per row was most of the hub's CPU per decision on
 * the bulk path (ADR 0048): each run binds its parameters by name from an object and steps the
 * VDBE program once per row; 64 rows per statement bind positionally and share the program, about
 * half the cost. 64 × 12 parameters stays far below SQLite's limit.
 */
const ROWS = 64;

const DECISION_COLUMNS =
  'seq, id, action, target, family, duration, expires_at, reason, rule, origin, created_at, set_name';
const ACTIVE_COLUMNS = 'target, set_name, seq, expires_at, family, origin, rule, created_at, lo';
const ACTIVE_CONFLICT = `ON CONFLICT (target, set_name) DO UPDATE SET seq = excluded.seq,
  expires_at = excluded.expires_at, family = excluded.family, origin = excluded.origin,
  rule = excluded.rule, created_at = excluded.created_at, lo = excluded.lo`;
const HISTORY_CONFLICT = 'ON CONFLICT (target) DO UPDATE SET count = count + 1, last_at = excluded.last_at';

type Param = string | number | bigint | Buffer | null;

/** One table's rows, written `ROWS` at a time by a multi-row statement, the rest one by one. */
class RowBuffer {
  private readonly many: Database.Statement<[Param[]]>;
  private readonly one: Database.Statement<[Param[]]>;
  private readonly params: Param[] = [];
  /** `row`: one row's VALUES text, with `width` parameters. */
  constructor(
    db: Database.Database,
    private readonly width: number,
    row: string,
    sql: (values: string) => string,
  ) {
    this.many = db.prepare<[Param[]]>(sql(Array.from({ length: ROWS }, () => row).join(', ')));
    this.one = db.prepare<[Param[]]>(sql(row));
  }

  /** Takes one row's values (exactly `width` of them, pushed by the caller). */
  get row(): Param[] {
    return this.params;
  }

  /** After each row: writes a full statement's worth. */
  rowDone(): void {
    if (this.params.length === ROWS * this.width) this.flush();
  }

  flush(): void {
    const p = this.params;
    try {
      if (p.length === ROWS * this.width) this.many.run(p);
      else for (let at = 0; at < p.length; at += this.width) this.one.run(p.slice(at, at + this.width));
    } finally {
      // A failed write fails the transaction: nothing of it may be written by the next one.
      p.length = 0;
    }
  }

  clear(): void {
    this.params.length = 0;
  }
}

/**
 * The append transaction's writes (store/sqlite.ts): log rows, active-set upserts and ban
 * history, each buffered into multi-row statements. Rows of one table are written in the order
 * they were given, and SQLite applies the rows of one statement in order, so two rows for the same
 * key in one statement end as they would one by one. The caller flushes the active rows before
 * any other write to `active` (an unban's delete), and everything before the transaction ends.
 */
export class AppendRows {
  private readonly decisions: RowBuffer;
  private readonly activeRows: RowBuffer;
  private readonly history: RowBuffer;

  constructor(db: Database.Database) {
    this.decisions = new RowBuffer(
      db,
      12,
      placeholders(12),
      (v) => `INSERT INTO decisions (${DECISION_COLUMNS}) VALUES ${v}`,
    );
    this.activeRows = new RowBuffer(
      db,
      9,
      placeholders(9),
      (v) => `INSERT INTO active (${ACTIVE_COLUMNS}) VALUES ${v} ${ACTIVE_CONFLICT}`,
    );
    // The count starts at 1 and grows on conflict.
    this.history = new RowBuffer(
      db,
      2,
      '(?, 1, ?)',
      (v) => `INSERT INTO ban_history (target, count, last_at) VALUES ${v} ${HISTORY_CONFLICT}`,
    );
  }

  decision(d: Decision): void {
    this.decisions.row.push(
      d.seq,
      d.id,
      d.action,
      d.target,
      d.family,
      d.duration,
      d.expiresAt,
      d.reason,
      d.rule,
      d.origin,
      d.createdAt,
      d.set,
    );
    this.decisions.rowDone();
  }

  /** The ban in force for (target, set) from now on. */
  active(d: Decision): void {
    this.activeRows.row.push(
      d.target,
      d.set,
      d.seq,
      d.expiresAt,
      d.family,
      d.origin,
      d.rule,
      d.createdAt,
      addressKey(d.target),
    );
    this.activeRows.rowDone();
  }

  flushActive(): void {
    this.activeRows.flush();
  }

  /** One more ban of `target` at `at` (repeat offenders). */
  offence(target: string, at: number): void {
    this.history.row.push(target, at);
    this.history.rowDone();
  }

  /** At the start of a transaction: nothing left from one that failed part-way. */
  clear(): void {
    this.decisions.clear();
    this.activeRows.clear();
    this.history.clear();
  }

  flush(): void {
    this.decisions.flush();
    this.activeRows.flush();
    this.history.flush();
  }
}

function placeholders(n: number): string {
  return `(${Array.from({ length: n }, () => '?').join(', ')})`;
}

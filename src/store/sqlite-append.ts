import type Database from 'better-sqlite3';
import type { Decision } from '../core/decision.js';
import { addressKey } from './address-key.js';
import { placeholders, RowBuffer } from './row-buffer.js';

const DECISION_COLUMNS =
  'seq, id, action, target, family, duration, expires_at, reason, rule, origin, created_at, set_name';
const ACTIVE_COLUMNS = 'target, set_name, seq, expires_at, family, origin, rule, created_at, lo';
const ACTIVE_CONFLICT = `ON CONFLICT (target, set_name) DO UPDATE SET seq = excluded.seq,
  expires_at = excluded.expires_at, family = excluded.family, origin = excluded.origin,
  rule = excluded.rule, created_at = excluded.created_at, lo = excluded.lo`;
const HISTORY_CONFLICT = 'ON CONFLICT (target) DO UPDATE SET count = count + 1, last_at = excluded.last_at';

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
    const r = this.decisions;
    r.put(d.seq);
    r.put(d.id);
    r.put(d.action);
    r.put(d.target);
    r.put(d.family);
    r.put(d.duration);
    r.put(d.expiresAt);
    r.put(d.reason);
    r.put(d.rule);
    r.put(d.origin);
    r.put(d.createdAt);
    r.put(d.set);
    r.rowDone();
  }

  /** The ban in force for (target, set) from now on. */
  active(d: Decision): void {
    const r = this.activeRows;
    r.put(d.target);
    r.put(d.set);
    r.put(d.seq);
    r.put(d.expiresAt);
    r.put(d.family);
    r.put(d.origin);
    r.put(d.rule);
    r.put(d.createdAt);
    r.put(addressKey(d.target));
    r.rowDone();
  }

  flushActive(): void {
    this.activeRows.flush();
  }

  /** One more ban of `target` at `at` (repeat offenders). */
  offence(target: string, at: number): void {
    const r = this.history;
    r.put(target);
    r.put(at);
    r.rowDone();
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

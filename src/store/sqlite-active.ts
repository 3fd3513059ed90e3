import type Database from 'better-sqlite3';
import { RampartError } from '../core/errors.js';
import { addressKey, supernets } from './address-key.js';
import type { DecisionRow } from './rows.js';
import type { ActiveCounts, ActiveOrderedQuery, ActiveQuery } from './types.js';

const CURSOR_RE = /^(\d{1,16})-(\d{1,16})$/;
export const MAX_ACTIVE_PAGE = 10_000;

type Params = Record<string, string | number | Buffer>;

/**
 * The operator views of the active set for SQLite: counts from the trigger-kept `active_counts`
 * table (minus the few bans expired since the last sweep, found through a partial index), pages
 * newest first through (created_at, seq) indexes with a keyset cursor, so the cost follows the
 * page size and not the number of bans.
 */
export class SqliteActiveViews {
  private readonly counts;
  private readonly expired;
  private readonly pages = new Map<string, Database.Statement<Params, { seq: number; created_at: number }>>();
  private readonly totals = new Map<string, Database.Statement<Params, { n: number }>>();
  private readonly orderedStmts = new Map<string, Database.Statement<Params, DecisionRow>>();

  constructor(private readonly db: Database.Database) {
    this.counts = db.prepare<[], { family: number; origin: string; rule: string; n: number }>(
      'SELECT family, origin, rule, n FROM active_counts WHERE n > 0',
    );
    this.expired = db.prepare<[number], { family: number; origin: string; rule: string; n: number }>(
      `SELECT family, origin, rule, count(*) AS n FROM active
       WHERE expires_at IS NOT NULL AND expires_at <= ? GROUP BY family, origin, rule`,
    );
  }

  count(now: number, only: { origin?: string; rule?: string } = {}): ActiveCounts {
    const out: ActiveCounts = { total: 0, byFamily: { 4: 0, 6: 0 }, byOrigin: {}, byRule: {} };
    const add = (r: { family: number; origin: string; rule: string }, n: number) => {
      if (only.origin !== undefined && r.origin !== only.origin) return;
      if (only.rule !== undefined && r.rule !== only.rule) return;
      out.total += n;
      out.byFamily[r.family === 6 ? 6 : 4] += n;
      out.byOrigin[r.origin] = (out.byOrigin[r.origin] ?? 0) + n;
      out.byRule[r.rule] = (out.byRule[r.rule] ?? 0) + n;
    };
    this.db.transaction(() => {
      for (const r of this.counts.all()) add(r, r.n);
      for (const r of this.expired.all(now)) add(r, -r.n);
    })();
    for (const m of [out.byOrigin, out.byRule]) {
      for (const [k, v] of Object.entries(m)) if (v <= 0) delete m[k];
    }
    return out;
  }

  /** Returns the seqs of the page (the caller loads the decisions) and the totals. */
  page(q: ActiveQuery, now: number): { seqs: number[]; next: string | null; total: number } {
    checkLimit(q.limit);
    const where = ['(a.expires_at IS NULL OR a.expires_at > @now)'];
    const params: Params = { now };
    if (q.origin !== undefined) {
      where.push('a.origin = @origin');
      params.origin = q.origin;
    }
    if (q.rule !== undefined) {
      where.push('a.rule = @rule');
      params.rule = q.rule;
    }
    if (q.set !== undefined) {
      where.push('a.set_name = @set');
      params.set = q.set;
    }
    if (q.since !== undefined) {
      where.push('a.created_at >= @since');
      params.since = q.since;
    }
    if (q.target !== undefined) {
      // Ranges containing the target are its supernets (point lookups on the primary key);
      // bans inside it start inside it (one range of the lo index).
      where.push('(a.target IN (SELECT value FROM json_each(@supernets)) OR a.lo BETWEEN @lo AND @hi)');
      params.supernets = JSON.stringify(supernets(q.target));
      params.lo = addressKey(q.target, 'first');
      params.hi = addressKey(q.target, 'last');
    }
    const filterKey = Object.keys(params).sort().join(',');
    const total = this.total(q, now, where, params, filterKey);
    if (q.cursor !== undefined) {
      const m = CURSOR_RE.exec(q.cursor);
      if (!m)
        throw new RampartError('E_USAGE', 'cursor is not one this hub gave (pass the "next" of a page)');
      where.push('(a.created_at, a.seq) < (@cAt, @cSeq)');
      params.cAt = Number(m[1]);
      params.cSeq = Number(m[2]);
    }
    params.limit = q.limit + 1;
    const key = Object.keys(params).sort().join(',');
    let stmt = this.pages.get(key);
    if (!stmt) {
      stmt = this.db.prepare<Params, { seq: number; created_at: number }>(
        `SELECT a.seq, a.created_at FROM active a WHERE ${where.join(' AND ')}
         ORDER BY a.created_at DESC, a.seq DESC LIMIT @limit`,
      );
      this.pages.set(key, stmt);
    }
    const rows = stmt.all(params);
    let next: string | null = null;
    if (rows.length > q.limit) {
      rows.length = q.limit;
      const last = rows[rows.length - 1]!;
      next = `${last.created_at}-${last.seq}`;
    }
    return { seqs: rows.map((r) => r.seq), next, total };
  }

  /** A page in primary-key order (target, set), resuming after the last row of the previous one. */
  ordered(q: ActiveOrderedQuery, now: number): DecisionRow[] {
    checkLimit(q.limit);
    const where = ['(a.expires_at IS NULL OR a.expires_at > @now)'];
    const params: Params = { now, limit: q.limit };
    if (q.family !== undefined) {
      where.push('a.family = @family');
      params.family = q.family;
    }
    if (q.set !== undefined) {
      where.push('a.set_name = @set');
      params.set = q.set;
    }
    if (q.after !== undefined) {
      where.push('(a.target, a.set_name) > (@afterTarget, @afterSet)');
      params.afterTarget = q.after.target;
      params.afterSet = q.after.set;
    }
    const key = `ordered:${Object.keys(params).sort().join(',')}`;
    let stmt = this.orderedStmts.get(key);
    if (!stmt) {
      stmt = this.db.prepare<Params, DecisionRow>(
        `SELECT d.* FROM active a JOIN decisions d ON d.seq = a.seq WHERE ${where.join(' AND ')}
         ORDER BY a.target, a.set_name LIMIT @limit`,
      );
      this.orderedStmts.set(key, stmt);
    }
    return stmt.all(params);
  }

  /** Origin and rule filters come from the counts table; the others count their (indexed) matches. */
  private total(q: ActiveQuery, now: number, where: string[], params: Params, key: string): number {
    if (q.target === undefined && q.since === undefined && q.set === undefined) {
      return this.count(now, { origin: q.origin, rule: q.rule }).total;
    }
    let stmt = this.totals.get(key);
    if (!stmt) {
      stmt = this.db.prepare<Params, { n: number }>(
        `SELECT count(*) AS n FROM active a WHERE ${where.join(' AND ')}`,
      );
      this.totals.set(key, stmt);
    }
    return stmt.get(params)!.n;
  }
}

/** E_USAGE unless `limit` is a page size a store serves (1 to {@link MAX_ACTIVE_PAGE}). */
export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ACTIVE_PAGE) {
    throw new RampartError('E_USAGE', `limit must be an integer from 1 to ${MAX_ACTIVE_PAGE}`);
  }
}

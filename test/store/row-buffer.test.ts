import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { placeholders, RowBuffer } from '../../src/store/row-buffer.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;

// The buffer keeps one array of a full statement's values for its whole life (ADR 0068): what a
// statement wrote, or a failed one left, must never reach the next statement.
describe('RowBuffer: multi-row upserts from one reused array', () => {
  let db: BetterSqlite3.Database | undefined;
  const open = () => {
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL, n INTEGER NOT NULL)');
    const buf = new RowBuffer(
      db,
      3,
      placeholders(3),
      (values) =>
        `INSERT INTO t (k, v, n) VALUES ${values} ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = excluded.n`,
    );
    const row = (k: string, v: number | null, n: number) => {
      buf.put(k);
      buf.put(v);
      buf.put(n);
      buf.rowDone();
    };
    const all = () =>
      db!.prepare('SELECT k, v, n FROM t ORDER BY n').all() as Array<{ k: string; v: number; n: number }>;
    return { db, buf, row, all };
  };
  afterEach(() => {
    db?.close();
    db = undefined;
  });

  it('writes full statements and the rest in the order given: the last row of a key wins', () => {
    const { buf, row, all } = open();
    // 64 per statement: two full ones and 3 more, keys repeating across and within statements.
    for (let i = 0; i < 131; i++) row(`k${i % 50}`, i, i);
    buf.flush();
    const rows = all();
    expect(rows).toHaveLength(50);
    expect(rows.map((r) => r.v)).toEqual(Array.from({ length: 50 }, (_, j) => 81 + j));
    expect(rows.every((r) => r.n === r.v)).toBe(true);
  });

  it('forgets what a failed statement held, and what `clear` dropped', () => {
    const { db, buf, row, all } = open();
    db.exec('BEGIN');
    // The 64th row breaks NOT NULL: the full statement throws and writes none of its rows.
    expect(() => {
      for (let i = 0; i < 64; i++) row(`bad${i}`, i === 63 ? null : i, i);
    }).toThrow(/NOT NULL/);
    db.exec('ROLLBACK');
    // Half a statement's worth held, then dropped.
    for (let i = 0; i < 30; i++) row(`dropped${i}`, i, i);
    buf.clear();
    row('a', 1, 1);
    row('b', 2, 2);
    buf.flush();
    // A flush with nothing held writes nothing again.
    buf.flush();
    expect(all()).toEqual([
      { k: 'a', v: 1, n: 1 },
      { k: 'b', v: 2, n: 2 },
    ]);
  });
});

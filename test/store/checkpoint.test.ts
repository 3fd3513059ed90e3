import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqlite } from '../../src/store/open-sqlite.js';
import { until } from '../hub/helpers.js';

// SQLite would checkpoint inside the commit that takes the WAL past 1,000 pages (a ban's own
// write); rampart checkpoints between events instead, whenever the WAL was written.
describe('openSqlite: WAL checkpoints between events', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('copies a few small commits into the database file well before the 1,000-page threshold', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-ckpt-'));
    const file = join(dir, 't.db');
    const db = openSqlite(file);
    try {
      db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
      // Everything so far is in the WAL; the database file has its header page at most.
      await until(() => statSync(file).size > 0, 5000);
      const before = statSync(file).size;
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 50; i++) insert.run('x'.repeat(2000));
      // About 30 pages: far below SQLite's own threshold, so only the timer writes them back.
      await until(() => statSync(file).size > before + 50 * 2000, 5000);
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });
    } finally {
      db.close();
    }
  });
});

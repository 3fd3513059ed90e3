import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CHECKPOINT_FRAMES, openSqlite } from '../../src/store/open-sqlite.js';
import { WalIndex } from '../../src/store/wal-index.js';
import { until } from '../hub/helpers.js';

// SQLite would checkpoint inside the commit that takes the WAL past 1,000 pages (a ban's own
// write); rampart checkpoints between events instead, once CHECKPOINT_FRAMES are waiting.
describe('openSqlite: WAL checkpoints between events', () => {
  let dir: string | undefined;
  /** A database in a new folder, its WAL index, and an insert into its one table. */
  const open = () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-ckpt-'));
    const file = join(dir, 't.db');
    const db = openSqlite(file);
    db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    return { file, db, index: new WalIndex(`${file}-shm`), insert };
  };
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('leaves a few small commits in the WAL, and copies them back once enough wait, well before 1,000 pages', async () => {
    const { file, db, index, insert } = open();
    try {
      for (let i = 0; i < 20; i++) insert.run('x'.repeat(2000));
      const few = index.framesWaiting()!;
      expect(few).toBeGreaterThan(10);
      expect(few).toBeLessThan(CHECKPOINT_FRAMES);
      // Three looks of the timer: still waiting, and the database file holds no row page yet.
      await new Promise((r) => setTimeout(r, 1600));
      expect(index.framesWaiting()).toBe(few);
      const before = statSync(file).size;
      expect(before).toBeLessThan(20 * 2000);

      for (let i = 0; i < 300; i++) insert.run('x'.repeat(2000));
      // Past the mark, yet far below SQLite's own 1,000 pages: only the timer writes them back.
      const many = index.framesWaiting()!;
      expect(many).toBeGreaterThanOrEqual(CHECKPOINT_FRAMES);
      expect(many).toBeLessThan(1000);
      await until(() => statSync(file).size > before + 300 * 2000, 5000);
      expect(index.framesWaiting()).toBe(0);
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 320 });
    } finally {
      index.close();
      db.close();
    }
  });

  it('reads the same count of waiting frames as SQLite reports', () => {
    const { db, index, insert } = open();
    try {
      for (let i = 0; i < 37; i++) insert.run('y'.repeat(3000));
      const waiting = index.framesWaiting();
      // [busy, frames in the WAL, frames checkpointed]; nothing had been checkpointed before.
      const [r] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
      expect(waiting).toBe(r!.log);
      expect(index.framesWaiting()).toBe(r!.log - r!.checkpointed);
      expect(new WalIndex(join(dir!, 'absent-shm')).framesWaiting()).toBeUndefined();
    } finally {
      index.close();
      db.close();
    }
  });
});

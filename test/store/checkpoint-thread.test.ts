import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointThread } from '../../src/store/checkpoint-thread.js';
import { CHECKPOINT_FRAMES, checkpointOffThread, openSqlite } from '../../src/store/open-sqlite.js';
import { until } from '../hub/helpers.js';

/** [frames in the WAL, frames copied back] from the WAL-index header (little-endian machine). */
function walHeader(file: string): [number, number] {
  const fd = openSync(`${file}-shm`, 'r');
  try {
    const b = Buffer.alloc(100);
    readSync(fd, b, 0, 100, 0);
    return [b.readUInt32LE(16), b.readUInt32LE(96)];
  } finally {
    closeSync(fd);
  }
}

// The hub and `rampart up` checkpoint on a thread of their own (ADR 0070): the main thread only
// looks at the WAL index, and the write that starts the WAL over (with its header sync) is the
// thread's, not the next ban's.
describe('WAL checkpoints on their own thread', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('copies the WAL back and starts it over before the main connection writes again', async () => {
    const thread = checkpointOffThread();
    dir = mkdtempSync(join(tmpdir(), 'rampart-ckthread-'));
    const file = join(dir, 't.db');
    const db = openSqlite(file);
    try {
      db.pragma('user_version = 7');
      db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 300; i++) insert.run('x'.repeat(2000));
      const [written] = walHeader(file);
      expect(written).toBeGreaterThanOrEqual(CHECKPOINT_FRAMES);
      // No write from this connection meanwhile: only the thread can have restarted the WAL.
      // The thread's answer comes as a message, possibly a turn after the header shows the restart.
      await until(() => walHeader(file)[0] <= 2 && thread.counts.restarted >= 1, 5000);
      insert.run('after');
      expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 301 });
      expect(db.pragma('user_version', { simple: true })).toBe(7);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
    // The thread closed its connection first: this one was the last, so SQLite folded the WAL
    // back and removed it, and the database file alone holds everything.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const copy = new (createRequire(import.meta.url)('better-sqlite3'))(file, { readonly: true });
    try {
      expect(copy.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 301 });
    } finally {
      copy.close();
    }
  });

  it('says when it cannot serve a file, so the caller checkpoints on its own thread', async () => {
    const thread = new CheckpointThread();
    try {
      const missing = join(tmpdir(), `rampart-ckthread-missing-${process.pid}.db`);
      expect(thread.checkpoint(missing)).toBe(true);
      await until(() => !thread.checkpoint(missing), 5000);
      expect(thread.counts.done).toBe(0);
    } finally {
      thread.stop();
    }
    expect(thread.checkpoint('/nowhere.db')).toBe(false);
  });
});

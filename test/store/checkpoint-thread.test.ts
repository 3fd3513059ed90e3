import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointThread } from '../../src/store/checkpoint-thread.js';
import { CHECKPOINT_FRAMES, checkpointOffThread, openSqlite } from '../../src/store/open-sqlite.js';
import { childOutput, within } from '../helpers/child-output.js';
import { walHeader } from '../helpers/wal-header.js';
import { until } from '../hub/helpers.js';

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

  it('waits out a write of the main connection in its way, and goes on serving the file', async () => {
    const thread = new CheckpointThread();
    dir = mkdtempSync(join(tmpdir(), 'rampart-ckthread-busy-'));
    const file = join(dir, 't.db');
    // A plain connection, so only this thread checkpoints (no timer of openSqlite's).
    const db = new (createRequire(import.meta.url)('better-sqlite3'))(file);
    try {
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (v TEXT)');
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 300; i++) insert.run('x'.repeat(2000));
      // The write lock held across the checkpoint: the thread's restart write finds it taken
      // (a bulk append holds it like this), which once made the thread give the file up for good.
      db.exec('BEGIN IMMEDIATE');
      insert.run('during');
      expect(thread.checkpoint(file)).toBe(true);
      await until(() => thread.counts.done >= 1, 5000);
      expect(thread.counts.restarted).toBe(0);
      db.exec('COMMIT');
      expect(thread.checkpoint(file)).toBe(true);
      await until(() => thread.counts.restarted >= 1, 5000);
      expect(walHeader(file)[0]).toBeLessThanOrEqual(2);
    } finally {
      thread.forget(file);
      db.close();
      thread.stop();
    }
  });

  it('never keeps its process alive: a process that checkpointed once ends by itself once its database is closed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'rampart-ckthread-exit-'));
    const file = join(dir, 't.db');
    // The built module, as `rampart hub` runs it: node refs a worker's port again when its first
    // 'message' listener is added, so a thread unref'd before that kept a stopped hub running.
    const mod = resolve('dist/store/open-sqlite.js');
    const script = `
      const { checkpointOffThread, openSqlite } = await import(${JSON.stringify(mod)});
      const thread = checkpointOffThread();
      const db = openSqlite(${JSON.stringify(file)});
      db.exec('CREATE TABLE t (v TEXT)');
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 300; i++) insert.run('x'.repeat(2000));
      const end = Date.now() + 10000;
      while (thread.counts.restarted < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      db.close();
      process.stdout.write('restarted ' + thread.counts.restarted + '\\n');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
    try {
      // It has nothing left to do once it has printed: it must end by itself, not wait for a signal.
      const r = await within(childOutput(child), 20_000, 'still running');
      expect(r).toEqual({ code: 0, out: 'restarted 1\n', err: '' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentState } from '../../src/agent/state.js';

describe('agent state', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rampart-state-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keeps active bans, last seq and positions across a reopen', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.applyHub(1, {
      ban: { target: '192.0.2.1', set: 'blocklist', expiresAt: null, seq: 1, origin: 'web1' },
    });
    s.applyHub(2, {
      ban: { target: '192.0.2.2', set: 'blocklist', expiresAt: Date.now() + 60_000, seq: 2, origin: 'web1' },
    });
    s.applyHub(3, { unban: { target: '192.0.2.1', set: 'blocklist' } });
    s.positions.set('/var/log/auth.log', '{"ino":1,"pos":42}');
    s.close();
    s.close();
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(3);
    expect(again.active().map((b) => b.target)).toEqual(['192.0.2.2']);
    expect(again.positions.get('/var/log/auth.log')).toBe('{"ino":1,"pos":42}');
    expect(again.positions.get('nope')).toBeUndefined();
    again.close();
  });

  it('hub bans held for a multi-row write (ADR 0048): read inside the batch, in order, gone with a rollback', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    const later = Date.now() + 60_000;
    s.batch(() => {
      for (let i = 1; i <= 150; i++) s.applyHubBan(i, `198.18.0.${i % 100}`, 'blocklist', later + i, 'web1');
      // Seen by a read in the same batch, the later of two bans of one key winning.
      expect(s.get('198.18.0.7', 'blocklist')).toMatchObject({ seq: 107, expiresAt: later + 107 });
      s.applyHubBan(151, '198.18.0.99', 'blocklist', null, 'web1');
      // An unban right after a held ban of the same key removes it.
      s.applyHub(152, { unban: { target: '198.18.0.99', set: 'blocklist' } });
      s.applyHubBan(153, '198.18.1.1', 'blocklist', null, 'web1');
    });
    expect(s.activeCount()).toBe(100);
    expect(s.get('198.18.0.99', 'blocklist')).toBeUndefined();
    expect(s.get('198.18.1.1', 'blocklist')).toMatchObject({ seq: 153 });
    // A batch that throws writes none of its held rows, and the next batch does not either.
    expect(() =>
      s.batch(() => {
        for (let i = 0; i < 10; i++) s.applyHubBan(200 + i, `198.18.2.${i}`, 'blocklist', null, 'web1');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(s.lastSeq()).toBe(153);
    s.batch(() => s.applyHubBan(154, '198.18.3.1', 'blocklist', null, 'web1'));
    s.close();
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(154);
    expect(again.activeCount()).toBe(101);
    expect(again.get('198.18.2.0', 'blocklist')).toBeUndefined();
    again.close();
  });

  it('forgets expired bans and never lists them as active', () => {
    const s = AgentState.open(fresh());
    const now = 1_000_000;
    s.applyHub(1, {
      ban: { target: '192.0.2.1', set: 'blocklist', expiresAt: now - 1, seq: 1, origin: 'x' },
    });
    s.applyHub(2, {
      ban: { target: '192.0.2.2', set: 'blocklist', expiresAt: now + 1000, seq: 2, origin: 'x' },
    });
    expect(s.active(now).map((b) => b.target)).toEqual(['192.0.2.2']);
    expect(s.pruneExpired(now)).toBe(1);
    expect(s.get('192.0.2.1', 'blocklist')).toBeUndefined();
    s.close();
  });

  it('a snapshot replaces hub bans but keeps local ones', () => {
    const s = AgentState.open(fresh());
    s.applyHub(5, { ban: { target: '192.0.2.1', set: 'blocklist', expiresAt: null, seq: 5, origin: 'x' } });
    s.addLocal({ target: '192.0.2.9', set: 'blocklist', expiresAt: null, origin: 'me' });
    s.replaceWithSnapshot(
      [{ target: '192.0.2.3', set: 'blocklist', expiresAt: null, seq: 90, origin: 'y' }],
      100,
    );
    expect(s.lastSeq()).toBe(100);
    expect(
      s
        .active()
        .map((b) => b.target)
        .sort(),
    ).toEqual(['192.0.2.3', '192.0.2.9']);
    s.close();
  });

  it('a local ban does not shorten a longer hub ban', () => {
    const s = AgentState.open(fresh());
    s.applyHub(1, { ban: { target: '192.0.2.1', set: 'blocklist', expiresAt: null, seq: 1, origin: 'hub' } });
    s.addLocal({ target: '192.0.2.1', set: 'blocklist', expiresAt: Date.now() + 1000, origin: 'me' });
    expect(s.get('192.0.2.1', 'blocklist')).toMatchObject({ seq: 1, expiresAt: null });
    s.close();
  });

  it('the outbox is ordered and durable until acknowledged', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    for (let i = 0; i < 5; i++) s.enqueue({ n: i });
    const first = s.peek(2);
    expect(first.map((x) => x.body)).toEqual([{ n: 0 }, { n: 1 }]);
    s.ack(first[0]!.id);
    s.close();
    const again = AgentState.open(dir);
    expect(again.outboxSize()).toBe(4);
    expect(again.peek(10).map((x) => (x.body as { n: number }).n)).toEqual([1, 2, 3, 4]);
    again.close();
  });

  const ban = (seq: number, last: number) => ({
    ban: { target: `192.0.2.${last}`, set: 'blocklist', expiresAt: null, seq, origin: 'hub' },
  });

  it('a batch writes last_seq once, in the same commit as its rows', async () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.applyHub(1, ban(1, 1));
    const Database = (await import('better-sqlite3')).default;
    // A second connection sees only what is committed (WAL): never a seq without its rows.
    const reader = new Database(join(dir, 'agent.db'), { readonly: true });
    const onDisk = () => ({
      seq: Number(
        (reader.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get() as { value: string }).value,
      ),
      // Hub bans reach `active` through the journal (ADR 0079): committed rows are in one or the other.
      rows: (
        reader
          .prepare('SELECT (SELECT count(*) FROM active) + (SELECT count(*) FROM journal) AS n')
          .get() as {
          n: number;
        }
      ).n,
    });
    s.batch(() => {
      for (let seq = 2; seq <= 4; seq++) s.applyHub(seq, ban(seq, seq));
      expect(s.lastSeq()).toBe(4);
      expect(onDisk()).toEqual({ seq: 1, rows: 1 });
    });
    expect(onDisk()).toEqual({ seq: 4, rows: 4 });
    reader.close();
    s.close();
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(4);
    again.close();
  });

  it('a batch that throws keeps neither its rows nor its last_seq, in memory or on disk', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.applyHub(1, ban(1, 1));
    expect(() =>
      s.batch(() => {
        s.applyHub(2, ban(2, 2));
        throw new Error('kernel said no');
      }),
    ).toThrow('kernel said no');
    expect(s.lastSeq()).toBe(1);
    expect(s.get('192.0.2.2', 'blocklist')).toBeUndefined();
    // An inner batch that fails alone is undone alone; the outer one still commits.
    s.batch(() => {
      s.applyHub(2, ban(2, 2));
      try {
        s.batch(() => {
          s.applyHub(3, ban(3, 3));
          throw new Error('inner');
        });
      } catch {}
      expect(s.lastSeq()).toBe(2);
    });
    s.close();
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(2);
    expect(again.active().map((b) => b.target)).toEqual(['192.0.2.1', '192.0.2.2']);
    again.close();
  });

  it('applyHubBan writes the row and last_seq as applyHub does, alone or in a batch', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    const at = Date.now() + 60_000;
    s.applyHubBan(1, '192.0.2.1', 'blocklist', at, 'web1');
    s.batch(() => {
      s.applyHubBan(2, '192.0.2.2', 'blocklist', null, 'web2');
      // The same element again: its newer seq, expiry and origin replace the row.
      s.applyHubBan(3, '192.0.2.1', 'blocklist', null, 'web3');
    });
    s.close();
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(3);
    expect(again.active()).toEqual([
      { target: '192.0.2.2', set: 'blocklist', expiresAt: null, seq: 2, origin: 'web2' },
      { target: '192.0.2.1', set: 'blocklist', expiresAt: null, seq: 3, origin: 'web3' },
    ]);
    again.close();
  });

  it('moves a schema 1 database (active with a rowid) to the current schema and keeps every row and last_seq', async () => {
    const dir = fresh();
    const Database = (await import('better-sqlite3')).default;
    // Schema 1 exactly as rampart wrote it before ADR 0044, with state in every table.
    const old = new Database(join(dir, 'agent.db'));
    old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE active (
        target TEXT NOT NULL, "set" TEXT NOT NULL, expires_at INTEGER, seq INTEGER NOT NULL,
        origin TEXT NOT NULL, PRIMARY KEY (target, "set"));
      CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE positions (key TEXT PRIMARY KEY, value TEXT NOT NULL);`);
    old.pragma('user_version = 1');
    const later = Date.now() + 3_600_000;
    const insert = old.prepare('INSERT INTO active VALUES (?, ?, ?, ?, ?)');
    insert.run('192.0.2.1', 'blocklist', null, 7, 'web1');
    insert.run('198.51.100.0/24', 'blocklist', later, 8, 'operator');
    insert.run('2001:db8::1', 'ssh', later, 0, 'this-node');
    old.prepare("INSERT INTO meta VALUES ('last_seq', '8')").run();
    old.prepare('INSERT INTO outbox (body, created_at) VALUES (\'{"target":"192.0.2.9"}\', 1)').run();
    old.prepare("INSERT INTO positions VALUES ('/var/log/auth.log', '{\"pos\":42}')").run();
    old.close();

    const s = AgentState.open(dir);
    expect(s.lastSeq()).toBe(8);
    expect(s.active()).toEqual([
      { target: '2001:db8::1', set: 'ssh', expiresAt: later, seq: 0, origin: 'this-node' },
      { target: '192.0.2.1', set: 'blocklist', expiresAt: null, seq: 7, origin: 'web1' },
      { target: '198.51.100.0/24', set: 'blocklist', expiresAt: later, seq: 8, origin: 'operator' },
    ]);
    expect(s.peek().map((i) => i.body)).toEqual([{ target: '192.0.2.9' }]);
    expect(s.positions.get('/var/log/auth.log')).toBe('{"pos":42}');
    // The key still refuses a second row for one element, and an upsert still replaces it.
    s.applyHubBan(9, '192.0.2.1', 'blocklist', later, 'web2');
    expect(s.get('192.0.2.1', 'blocklist')).toEqual({
      target: '192.0.2.1',
      set: 'blocklist',
      expiresAt: later,
      seq: 9,
      origin: 'web2',
    });
    s.close();

    const check = new Database(join(dir, 'agent.db'), { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(3);
    // Schema 3: the journal, emptied into `active` by the read above.
    expect(check.prepare('SELECT count(*) AS n FROM journal').get()).toEqual({ n: 0 });
    const sql = (
      check.prepare("SELECT sql FROM sqlite_master WHERE name = 'active'").get() as { sql: string }
    ).sql;
    expect(sql).toMatch(/WITHOUT ROWID/);
    expect(sql).toMatch(/PRIMARY KEY \(target, "set"\)/);
    // One B-tree for the table: no separate index for its primary key any more.
    expect(check.prepare("SELECT count(*) AS n FROM sqlite_master WHERE tbl_name = 'active'").get()).toEqual({
      n: 1,
    });
    expect(check.prepare('SELECT count(*) AS n FROM active').get()).toEqual({ n: 3 });
    check.close();
  });

  it('refuses a database from a newer rampart with a clear error', async () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.close();
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(dir, 'agent.db'));
    db.pragma('user_version = 99');
    db.close();
    expect(() => AgentState.open(dir)).toThrow(/schema 99 is newer/);
  });
});

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
      rows: (reader.prepare('SELECT count(*) AS n FROM active').get() as { n: number }).n,
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

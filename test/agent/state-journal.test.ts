import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ActiveBan, AgentState, FOLD_ROWS } from '../../src/agent/state.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** Hub bans go to a journal and are folded into `active` in key order (ADR 0079). */
describe('agent state: the hub-ban journal', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'rampart-journal-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    vi.useRealTimers();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  /** Rows in `active` and in `journal`, as a second connection sees the committed file. */
  const onDisk = (dir: string) => {
    const db = new Database(join(dir, 'agent.db'), { readonly: true });
    try {
      const n = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
      return { active: n('active'), journal: n('journal') };
    } finally {
      db.close();
    }
  };
  const addr = (i: number) => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`;

  it('ends as one upsert per decision in arrival order would: a random mix of bans, unbans and local bans', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    const random = seededRandom(79);
    // The model: what applying every decision one by one to a map leaves.
    const model = new Map<string, ActiveBan>();
    const key = (t: string, set: string) => `${t} ${set}`;
    const future = Date.now() + 3_600_000;
    let seq = 0;
    for (let round = 0; round < 60; round++) {
      s.batch(() => {
        const n = 1 + Math.floor(random() * 300);
        for (let k = 0; k < n; k++) {
          // 40 targets in 2 sets: the same key comes back often, inside a batch and across them.
          const target = addr(Math.floor(random() * 40));
          const set = random() < 0.5 ? 'blocklist' : 'ssh';
          const r = random();
          seq++;
          if (r < 0.7) {
            const ban = { target, set, expiresAt: future + seq, seq, origin: `hub${seq % 3}` };
            s.applyHubBan(seq, target, set, ban.expiresAt, ban.origin);
            model.set(key(target, set), ban);
          } else if (r < 0.9) {
            s.applyHub(seq, { unban: { target, set } });
            model.delete(key(target, set));
          } else {
            s.applyHub(seq, null);
          }
        }
      });
      if (random() < 0.2) {
        // A detection of this agent's own: a hub ban of the same key outranks it.
        const target = addr(Math.floor(random() * 40));
        const held = model.get(key(target, 'blocklist'));
        s.addLocal({ target, set: 'blocklist', expiresAt: future, origin: 'this-node' });
        if (!held || held.seq === 0 || (held.expiresAt !== null && held.expiresAt < future))
          model.set(key(target, 'blocklist'), {
            target,
            set: 'blocklist',
            expiresAt: future,
            seq: held?.seq ?? 0,
            origin: 'this-node',
          });
      }
    }
    const sorted = (bans: ActiveBan[]) =>
      [...bans].sort((a, b) => key(a.target, a.set).localeCompare(key(b.target, b.set)));
    expect(sorted(s.active())).toEqual(sorted([...model.values()]));
    expect(s.lastSeq()).toBe(seq);
    s.close();
  });

  it('keeps a journal that was never folded across a restart, and reads it back', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.batch(() => {
      s.applyHubBan(1, addr(1), 'blocklist', null, 'web1');
      s.applyHubBan(2, addr(2), 'blocklist', null, 'web1');
      s.applyHubBan(3, addr(1), 'blocklist', 123, 'web2');
    });
    s.close();
    expect(onDisk(dir)).toEqual({ active: 0, journal: 3 });
    const again = AgentState.open(dir);
    expect(again.lastSeq()).toBe(3);
    expect(again.get(addr(1), 'blocklist')).toEqual({
      target: addr(1),
      set: 'blocklist',
      expiresAt: 123,
      seq: 3,
      origin: 'web2',
    });
    expect(again.activeCount(0)).toBe(2);
    again.close();
    expect(onDisk(dir)).toEqual({ active: 2, journal: 0 });
  });

  it(`folds as soon as the journal holds ${FOLD_ROWS.toLocaleString('en')} rows, inside the batch, so it never holds more`, () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.batch(() => {
      for (let i = 1; i < FOLD_ROWS; i++) s.applyHubBan(i, addr(i), 'blocklist', null, 'web1');
    });
    expect(onDisk(dir)).toEqual({ active: 0, journal: FOLD_ROWS - 1 });
    s.batch(() => {
      s.applyHubBan(FOLD_ROWS, addr(1), 'blocklist', 5, 'web2');
      s.applyHubBan(FOLD_ROWS + 1, addr(FOLD_ROWS), 'blocklist', null, 'web2');
    });
    // The first of the two made 20,000 and folded; the second waits in the journal.
    expect(onDisk(dir)).toEqual({ active: FOLD_ROWS - 1, journal: 1 });
    expect(s.get(addr(1), 'blocklist')?.seq).toBe(FOLD_ROWS);
    // One batch of 2.5 × FOLD_ROWS (a big snapshot or catch-up page): two folds on the way.
    let seq = FOLD_ROWS + 1;
    s.batch(() => {
      for (let i = 0; i < 2.5 * FOLD_ROWS; i++)
        s.applyHubBan(++seq, addr(100_000 + i), 'blocklist', null, 'web1');
    });
    expect(onDisk(dir)).toEqual({ active: FOLD_ROWS + 2 * FOLD_ROWS, journal: FOLD_ROWS / 2 });
    expect(s.activeCount(0)).toBe(FOLD_ROWS + 2.5 * FOLD_ROWS);
    s.close();
  });

  it('folds the journal once a second passed without a batch, with nothing reading it', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const dir = fresh();
    const s = AgentState.open(dir);
    s.batch(() => s.applyHubBan(1, addr(1), 'blocklist', null, 'web1'));
    expect(onDisk(dir)).toEqual({ active: 0, journal: 1 });
    vi.advanceTimersByTime(999);
    // Another batch: the second starts again from here.
    s.batch(() => s.applyHubBan(2, addr(2), 'blocklist', null, 'web1'));
    vi.advanceTimersByTime(999);
    expect(onDisk(dir)).toEqual({ active: 0, journal: 2 });
    vi.advanceTimersByTime(1);
    expect(onDisk(dir)).toEqual({ active: 2, journal: 0 });
    s.close();
  });

  it('a failed batch leaves neither its journal rows nor a miscount behind', () => {
    const dir = fresh();
    const s = AgentState.open(dir);
    s.batch(() => s.applyHubBan(1, addr(1), 'blocklist', null, 'web1'));
    s.batch(() => {
      s.applyHubBan(2, addr(2), 'blocklist', null, 'web1');
      expect(() =>
        s.batch(() => {
          for (let i = 3; i < 200; i++) s.applyHubBan(i, addr(i), 'blocklist', null, 'web1');
          throw new Error('kernel said no');
        }),
      ).toThrow('kernel said no');
    });
    expect(onDisk(dir)).toEqual({ active: 0, journal: 2 });
    expect(s.lastSeq()).toBe(2);
    expect(s.active().map((b) => b.target)).toEqual([addr(1), addr(2)]);
    s.close();
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';
import { MIGRATIONS } from '../../src/store/sqlite-schema.js';
import type { Store } from '../../src/store/types.js';
import { ban, storeContract, unban } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const files = new WeakMap<Store, string>();
let n = 0;

storeContract('sqlite', {
  async create() {
    const file = join(dir, `s${n++}.db`);
    const s = new SqliteStore(file);
    files.set(s, file);
    return s;
  },
  async reopen(store) {
    return new SqliteStore(files.get(store)!);
  },
});

describe('sqlite store specifics', () => {
  it('uses WAL and records the schema version', async () => {
    const file = join(dir, 'wal.db');
    const s = new SqliteStore(file);
    await s.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length); // 5 with the ban-time index
    db.close();
  });

  it('keeps statement journals in memory (a 10,000-ban append wrote ~17 temp-file pages per ban)', async () => {
    const s = new SqliteStore(join(dir, 'temp-store.db'));
    const db = (s as unknown as { db: Database.Database }).db;
    expect(db.pragma('temp_store', { simple: true })).toBe(2); // MEMORY
    await s.close();
  });

  it('a file from a newer rampart is refused with E_STORE, not migrated down', () => {
    const file = join(dir, 'newer.db');
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => new SqliteStore(file)).toThrow(/schema version 99 is newer/);
  });

  it('a file that is not a database is refused with E_STORE naming it', () => {
    const file = join(dir, 'junk.db');
    writeFileSync(file, 'this is not sqlite'.repeat(100));
    expect(() => new SqliteStore(file)).toThrow(
      expect.objectContaining({ code: 'E_STORE', message: expect.stringContaining(file) }),
    );
  });

  it('a batch of 200 (multi-row statements, ADR 0048) keeps log order: an unban after a ban in it wins, a later ban replaces an earlier', async () => {
    const s = new SqliteStore(join(dir, 'multi-row.db'));
    const T = Date.now();
    const inputs = Array.from({ length: 200 }, (_, i) => ban(`198.18.0.${i % 150}`, T + i));
    // 198.18.0.100: banned at 100, unbanned at 120 (both in the second 64-row statement's rows).
    inputs[120] = unban('198.18.0.100', T + 120);
    // 198.18.0.20: banned at 20 and again at 170 (the same key twice in the batch).
    const out = await s.append(
      inputs,
      inputs.filter((d) => d.action === 'ban').map((d) => ({ target: d.target, at: d.createdAt })),
    );
    expect(out.map((d) => d.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect((await s.since(0, 500)).map((d) => [d.seq, d.target, d.action])).toEqual(
      out.map((d) => [d.seq, d.target, d.action]),
    );
    const active = new Map((await s.active(T + 1000)).map((d) => [d.target, d.seq]));
    expect(active.has('198.18.0.100')).toBe(false);
    expect(active.get('198.18.0.20')).toBe(171);
    // 150 targets, less the one unbanned and the one whose only ban became that unban.
    expect(active.size).toBe(148);
    expect((await s.countActive(T + 1000)).total).toBe(148);
    // Offences per target, repeats counted: 198.18.0.20 twice, 198.18.0.149 once.
    expect((await s.banHistory('198.18.0.20')).count).toBe(2);
    expect((await s.banHistory('198.18.0.149')).count).toBe(1);
    await s.close();
  });

  it('a failed batch appends nothing and leaves head unchanged', async () => {
    const s = new SqliteStore(join(dir, 'atomic.db'));
    await s.append([ban('192.0.2.1', 1)]);
    // A duplicate id violates UNIQUE half-way through the batch.
    await expect(
      s.append([ban('192.0.2.2', 2, { id: 'dup' }), ban('192.0.2.3', 3, { id: 'dup' })]),
    ).rejects.toMatchObject({
      code: 'E_STORE',
    });
    expect(await s.head()).toBe(1);
    expect(await s.since(0, 10)).toHaveLength(1);
    expect((await s.append([ban('192.0.2.4', 4)]))[0]!.seq).toBe(2);
    await s.close();
  });
});

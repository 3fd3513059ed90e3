import type Database from 'better-sqlite3';
import { RampartError } from '../core/errors.js';
import type { BouncerRecord } from './types.js';

interface BouncerRow {
  name: string;
  key_hash: string;
  created_at: number;
  last_pull: number | null;
  last_seq: number;
}

const toRecord = (r: BouncerRow): BouncerRecord => ({
  name: r.name,
  keyHash: r.key_hash,
  createdAt: r.created_at,
  lastPull: r.last_pull,
  lastSeq: r.last_seq,
});

/** The `bouncers` table of the SQLite store (CrowdSec-compatible read-only keys). */
export class SqliteBouncers {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      add: db.prepare<[string, string, number]>(
        'INSERT INTO bouncers (name, key_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      get: db.prepare<[string], BouncerRow>('SELECT * FROM bouncers WHERE name = ?'),
      byKey: db.prepare<[string], BouncerRow>('SELECT * FROM bouncers WHERE key_hash = ?'),
      list: db.prepare<[], BouncerRow>('SELECT * FROM bouncers ORDER BY name'),
      remove: db.prepare<[string]>('DELETE FROM bouncers WHERE name = ?'),
      touch: db.prepare<[number, number, string]>(
        'UPDATE bouncers SET last_seq = ?, last_pull = ? WHERE name = ?',
      ),
    };
  }

  add(name: string, keyHash: string, now: number): BouncerRecord {
    if (this.stmt.add.run(name, keyHash, now).changes === 0) {
      throw new RampartError(
        'E_USAGE',
        `bouncer ${name} already exists (remove it first to issue a new key)`,
      );
    }
    return toRecord(this.stmt.get.get(name)!);
  }

  byKeyHash(keyHash: string): BouncerRecord | undefined {
    const r = this.stmt.byKey.get(keyHash);
    return r ? toRecord(r) : undefined;
  }

  list(): BouncerRecord[] {
    return this.stmt.list.all().map(toRecord);
  }

  remove(name: string): boolean {
    return this.stmt.remove.run(name).changes === 1;
  }

  touch(name: string, lastSeq: number, now: number): void {
    this.stmt.touch.run(lastSeq, now, name);
  }
}

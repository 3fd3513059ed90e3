import { describe, expect, it } from 'vitest';
import { TrackerTable } from '../../src/detect/tracker-table.js';

/** The reference: two generations of plain Maps (the quick-lru scheme the table implements). */
class Model {
  young = new Map<string, number>();
  old = new Map<string, number>();
  evictions = 0;
  constructor(private readonly generation: number) {}
  get(k: string): number | undefined {
    const v = this.young.get(k);
    if (v !== undefined) return v;
    const o = this.old.get(k);
    if (o !== undefined) {
      this.old.delete(k);
      this.add(k, o);
    }
    return o;
  }
  add(k: string, v: number): void {
    if (this.young.size >= this.generation) {
      this.evictions += this.old.size;
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(k, v);
  }
  delete(k: string): boolean {
    return this.young.delete(k) || this.old.delete(k);
  }
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('TrackerTable', () => {
  it('behaves like two generations of Maps over IPv4 and text keys (random operations)', () => {
    for (const cap of [2, 7, 100, 5000]) {
      const table = new TrackerTable(cap);
      const model = new Model(Math.max(1, Math.floor(cap / 2)));
      const next = rng(cap);
      // A small key space so gets, re-adds and deletes hit existing keys often.
      const space = cap * 3;
      for (let op = 0; op < 12_000; op++) {
        const n = Math.floor(next() * space);
        const rule = n % 3;
        const text = n % 5 === 0;
        // High addresses (negative as int32) and address 0 included.
        const v4 = n % 7 === 0 ? 0xffffff00 + (n % 256) : (n * 2654435761) >>> 0;
        const id = text ? `t${rule}|${n}` : `${v4}/${rule}`;
        const r = next();
        if (r < 0.15) {
          const got = text ? table.deleteText(id) : table.deleteV4(v4, rule);
          expect(got).toBe(model.delete(id));
        } else {
          const got = text ? table.getText(id) : table.getV4(v4, rule);
          expect(got, `cap ${cap} op ${op}`).toBe(model.get(id));
          if (got === undefined) {
            if (text) table.addText(id, op);
            else table.addV4(v4, rule, op);
            model.add(id, op);
          }
        }
        expect(table.size).toBe(model.young.size + model.old.size);
        expect(table.size).toBeLessThanOrEqual(cap);
      }
      expect(table.evictions).toBe(model.evictions);
      expect(table.evictions).toBeGreaterThan(0);
    }
  });

  it('the same address under two rules is two entries', () => {
    const t = new TrackerTable(100);
    t.addV4(0xc0000201, 0, 10);
    t.addV4(0xc0000201, 1, 11);
    expect([t.getV4(0xc0000201, 0), t.getV4(0xc0000201, 1), t.getV4(0xc0000202, 0)]).toEqual([
      10,
      11,
      undefined,
    ]);
    expect(t.deleteV4(0xc0000201, 0)).toBe(true);
    expect(t.getV4(0xc0000201, 1)).toBe(11);
  });
});

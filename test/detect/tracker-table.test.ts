import { describe, expect, it } from 'vitest';
import { EXTRA_LIMIT, TrackerTable } from '../../src/detect/tracker-table.js';
import { rng } from './seeded-random.js';

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

/** One random operation on both, checked against each other; keys drawn from `space`. */
function step(table: TrackerTable, model: Model, next: () => number, space: number, op: number): void {
  const n = Math.floor(next() * space);
  const rule = n % 3;
  const kind = n % 5 === 0 ? 'text' : n % 5 === 1 ? 'v6' : 'v4';
  // High addresses (negative as int32) and address 0 included.
  const v4 = n % 7 === 0 ? 0xffffff00 + (n % 256) : (n * 2654435761) >>> 0;
  const v6 = Int32Array.of(0x20010db8, n % 11 === 0 ? 0 : n * 40503, -n, n);
  const id = kind === 'text' ? `t${rule}|${n}` : kind === 'v6' ? `${v6.join(':')}/${rule}` : `${v4}/${rule}`;
  const r = next();
  if (r < 0.15) {
    const got =
      kind === 'text'
        ? table.deleteText(id)
        : kind === 'v6'
          ? table.deleteV6(v6, rule)
          : table.deleteV4(v4, rule);
    expect(got).toBe(model.delete(id));
    return;
  }
  const got =
    kind === 'text' ? table.getText(id) : kind === 'v6' ? table.getV6(v6, rule) : table.getV4(v4, rule);
  const want = model.get(id);
  if (got !== want) expect(got, `op ${op}: ${id}`).toBe(want);
  if (got === undefined) {
    if (kind === 'text') table.addText(id, op);
    else if (kind === 'v6') table.addV6(v6, rule, op);
    else table.addV4(v4, rule, op);
    model.add(id, op);
  }
}

describe('TrackerTable', () => {
  it('behaves like two generations of Maps over IPv4, IPv6 and text keys (random operations)', () => {
    for (const cap of [2, 7, 100, 5000]) {
      const table = new TrackerTable(cap);
      const model = new Model(Math.max(1, Math.floor(cap / 2)));
      const next = rng(cap);
      // A small key space so gets, re-adds and deletes hit existing keys often.
      for (let op = 0; op < 12_000; op++) {
        step(table, model, next, cap * 3, op);
        expect(table.size).toBe(model.young.size + model.old.size);
        expect(table.size).toBeLessThanOrEqual(cap);
      }
      expect(table.evictions).toBe(model.evictions);
      expect(table.evictions).toBeGreaterThan(0);
    }
  });

  it('stays exact while its tables grow in place past their reserved size and sweep old entries', () => {
    // 200,000 entries: the IPv4 table doubles by copy up to 2^15 slots, then inside one array
    // reserved for 2^18; both generations fill several times over, so sweeps run at every size.
    const cap = 200_000;
    const table = new TrackerTable(cap);
    const model = new Model(cap / 2);
    const next = rng(11);
    for (let op = 0; op < 700_000; op++) {
      // First a run of mostly new keys (growth), then a key space twice the cap (churn).
      step(table, model, next, op < 300_000 ? 4_000_000 : cap * 2, op);
      if (op % 50_000 === 0) expect(table.size).toBe(model.young.size + model.old.size);
    }
    expect(table.size).toBe(model.young.size + model.old.size);
    expect(table.evictions).toBe(model.evictions);
    expect(table.evictions).toBeGreaterThan(cap);
    // Every key the model holds is found with its value (a get moves an old entry to the young,
    // which may evict others: the model follows).
    let found = 0;
    for (const id of [...model.old.keys(), ...model.young.keys()]) {
      if (id.startsWith('t')) continue;
      const [key, rule] = id.split('/');
      const words = key!.split(':').map(Number);
      const got =
        words.length === 4
          ? table.getV6(Int32Array.from(words), Number(rule))
          : table.getV4(words[0]!, Number(rule));
      const want = model.get(id);
      if (got !== want) expect(got, id).toBe(want);
      if (got !== undefined) found++;
    }
    expect(found).toBeGreaterThan(cap / 4);
  });

  it('evicted values reach onEvict with their rule, once each', () => {
    const evicted: Array<[number, number]> = [];
    const table = new TrackerTable(1000, (v, rule) => evicted.push([v, rule]));
    for (let i = 0; i < 1500; i++) table.addV4(0xc6336400 + i, i % 4, i);
    // The first 500 were old when the young filled a second time.
    expect(table.evictions).toBe(500);
    expect(evicted.sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 500 }, (_, i) => [i, i % 4]));
    expect(table.getV4(0xc6336400, 0)).toBeUndefined();
    expect(table.getV4(0xc6336400 + 500, 0)).toBe(500);
  });

  it('a key added right after its miss is found, when the add grows the table or another key came between', () => {
    // A miss leaves the empty slot it ended on for the add that follows (docs/adr/0046): growth
    // moves every entry, so that slot must not be used after it, nor for another key.
    // A cap that holds all 200,000 in the young generation: nothing is evicted or swept.
    const t = new TrackerTable(1_000_000);
    const v6 = new Int32Array(4);
    for (let i = 0; i < 100_000; i++) {
      const v4 = Math.imul(i, 2654435761) >>> 0;
      v6[0] = 0x20010db8;
      v6[3] = i;
      expect(t.getV4(v4, 1)).toBeUndefined();
      expect(t.getV6(v6, 2)).toBeUndefined();
      if (i % 3 === 0) expect(t.getV4(v4 ^ 1, 1)).toBe(t.getV4(v4 ^ 1, 1));
      t.addV4(v4, 1, i);
      t.addV6(v6, 2, i);
      expect(t.getV4(v4, 1)).toBe(i);
      expect(t.getV6(v6, 2)).toBe(i);
    }
    for (let i = 0; i < 100_000; i += 97) {
      v6[3] = i;
      expect(t.getV4(Math.imul(i, 2654435761) >>> 0, 1)).toBe(i);
      expect(t.getV6(v6, 2)).toBe(i);
    }
  });

  it("keeps each pair's extra through growth, deletions and sweeps, apart from its key", () => {
    // 120,000 pairs per family: both tables grow past their reserved size by steps of 30 %,
    // deletions shift runs back; then a sweep drops a generation of pairs that have extras.
    const n = 120_000;
    const t = new TrackerTable(4 * n);
    const v6 = new Int32Array(4);
    const v4Of = (i: number) => Math.imul(i, 2654435761) >>> 0;
    const v6Of = (i: number) => {
      v6[0] = 0x20010db8;
      v6[1] = -i;
      v6[3] = i;
      return v6;
    };
    // Extras that set the word's top bit, and the largest.
    const extraOf = (i: number) => (i === 0 ? EXTRA_LIMIT - 1 : (i * 7919) % EXTRA_LIMIT);
    for (let i = 0; i < n; i++) {
      const rule = i % 3;
      t.addV4(v4Of(i), rule, i);
      expect(t.getV4(v4Of(i), rule)).toBe(i);
      t.setV4(v4Of(i), rule, i + 1, extraOf(i));
      t.addV6(v6Of(i), rule, i);
      expect(t.getV6(v6Of(i), rule)).toBe(i);
      t.setV6(v6Of(i), rule, i + 1, extraOf(i));
      // The same address under another rule: another pair, its extra 0.
      if (i % 10 === 0) t.addV4(v4Of(i), 3, 7);
    }
    for (let i = 0; i < n; i += 5) {
      expect(t.deleteV4(v4Of(i), i % 3)).toBe(true);
      expect(t.deleteV6(v6Of(i), i % 3)).toBe(true);
    }
    const check = () => {
      for (let i = 1; i < n; i++) {
        if (i % 5 === 0) {
          expect(t.getV4(v4Of(i), i % 3)).toBeUndefined();
          continue;
        }
        if (t.getV4(v4Of(i), i % 3) !== i + 1) expect(t.getV4(v4Of(i), i % 3), `v4 ${i}`).toBe(i + 1);
        if (t.extraV4(v4Of(i), i % 3) !== extraOf(i))
          expect(t.extraV4(v4Of(i), i % 3), `${i}`).toBe(extraOf(i));
        if (t.getV6(v6Of(i), i % 3) !== i + 1) expect(t.getV6(v6Of(i), i % 3), `v6 ${i}`).toBe(i + 1);
        if (t.extraV6(v6Of(i), i % 3) !== extraOf(i))
          expect(t.extraV6(v6Of(i), i % 3), `${i}`).toBe(extraOf(i));
        if (i % 10 === 1) {
          expect(t.getV4(v4Of(i - 1), 3)).toBe(7);
          expect(t.extraV4(v4Of(i - 1), 3)).toBe(0);
        }
      }
    };
    check();
    // The first n pairs (with extras) fill a generation; n + 1 more evict them all, once each.
    const evicted: number[] = [];
    const u = new TrackerTable(2 * n, (v) => evicted.push(v));
    for (let i = 0; i < n; i++) {
      u.addV4(v4Of(i), 0, i);
      u.getV4(v4Of(i), 0);
      u.setV4(v4Of(i), 0, i, extraOf(i));
    }
    for (let i = n; i < 2 * n + 1; i++) u.addV4(v4Of(i), 1, i);
    expect(u.evictions).toBe(n);
    expect(evicted.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    for (let i = n; i < 2 * n + 1; i += 101)
      expect([u.getV4(v4Of(i), 1), u.extraV4(v4Of(i), 1)]).toEqual([i, 0]);
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

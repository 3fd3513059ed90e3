import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import { BULK_SLICE } from '../../src/hub/core.js';
import type { Store } from '../../src/store/types.js';
import { startTestHub, type TestHub } from './helpers.js';

/** `n` distinct test addresses from 198.18.0.0/15 (benchmarking), starting at the `base`th. */
const addrs = (n: number, base = 0) =>
  Array.from({ length: n }, (_, i) => `198.18.${(base + i) >> 8}.${(base + i) & 255}`);

/**
 * A bulk import is appended BULK_SLICE items per transaction, each slice published before the
 * next is appended (ADR 0068). What must not change: duplicates found across slices, seqs in
 * request order, and an answer that says exactly which items a failing store left unapplied.
 */
describe('bulk import in slices', () => {
  let t: TestHub;
  let store: Store;
  let realAppend: Store['append'];

  beforeAll(async () => {
    t = await startTestHub();
    store = t.hub.core.store;
    realAppend = store.append;
  });
  afterAll(async () => {
    store.append = realAppend;
    await t?.close();
  });

  it('appends a slice at a time, lets the event loop turn between them, and keeps duplicates across slices', async () => {
    await t.hub.core.ban({ target: '198.18.200.1', duration: 7200 });
    const calls: number[] = [];
    let turnedBetween = 0;
    store.append = (inputs, offences) => {
      calls.push(inputs.length);
      // Runs only if the event loop turns before the next slice is appended.
      if (calls.length < 3) setImmediate(() => turnedBetween++);
      else expect(turnedBetween).toBe(2);
      return realAppend.call(store, inputs, offences);
    };
    try {
      const targets = addrs(2 * BULK_SLICE + 500);
      targets[BULK_SLICE + 5] = targets[10]!; // a repeat in the next slice
      targets[2 * BULK_SLICE + 7] = '198.18.200.1'; // in force already, not outlasted
      const out = await t.hub.core.banMany(targets.map((target) => ({ target, duration: 3600 })));
      expect(calls).toEqual([BULK_SLICE, BULK_SLICE - 1, 499]);
      expect(turnedBetween).toBe(2);
      const bans = out.filter((o) => o.result === 'ban');
      expect(bans).toHaveLength(2 * BULK_SLICE + 498);
      const seqs = bans.map((o) => (o as { decision: { seq: number } }).decision.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
      const repeat = out[BULK_SLICE + 5] as { result: string; decision: { seq: number; target: string } };
      expect(repeat.result).toBe('duplicate');
      expect(repeat.decision.seq).toBe(seqs[10]);
      expect(repeat.decision.target).toBe(targets[10]);
      expect(out[2 * BULK_SLICE + 7]).toMatchObject({
        result: 'duplicate',
        decision: { target: '198.18.200.1' },
      });
    } finally {
      store.append = realAppend;
    }
  });

  it('reads the next slice while this one is appended (ADR 0080), and still finds what that append wrote', async () => {
    if (!store.lookUp) throw new Error('this store reads pairs at once; the test expects it to');
    const realLookUp = store.lookUp;
    const events: string[] = [];
    store.append = async (inputs, offences) => {
      events.push(`append ${inputs.length} start`);
      // Slow enough that a read started after it would land inside it.
      await new Promise((r) => setTimeout(r, 30));
      const out = await realAppend.call(store, inputs, offences);
      events.push(`append ${inputs.length} end`);
      return out;
    };
    store.lookUp = (pairs, now, opts) => {
      events.push(`lookUp ${pairs.length}`);
      return realLookUp.call(store, pairs, now, opts);
    };
    try {
      const targets = addrs(2 * BULK_SLICE, 40_000);
      targets[BULK_SLICE + 3] = targets[3]!; // appended by the slice before its read ended
      const out = await t.hub.core.banMany(targets.map((target) => ({ target, duration: 3600 })));
      expect(events).toEqual([
        `lookUp ${BULK_SLICE}`,
        `append ${BULK_SLICE} start`,
        `lookUp ${BULK_SLICE}`,
        `append ${BULK_SLICE} end`,
        `append ${BULK_SLICE - 1} start`,
        `append ${BULK_SLICE - 1} end`,
      ]);
      expect(out[BULK_SLICE + 3]).toMatchObject({ result: 'duplicate', decision: { target: targets[3] } });
      expect(out.filter((o) => o.result === 'ban')).toHaveLength(2 * BULK_SLICE - 1);
    } finally {
      store.append = realAppend;
      store.lookUp = realLookUp;
    }
  });

  it('answers the items of a slice the store refuses, and all after it, as not applied; sent again they apply', async () => {
    let n = 0;
    store.append = (inputs, offences) => {
      if (++n === 2) throw new RampartError('E_STORE', 'database is locked');
      return realAppend.call(store, inputs, offences);
    };
    const targets = addrs(2 * BULK_SLICE + 300, 10_000);
    const body = { decisions: targets.map((target) => ({ target, duration: 600, reason: 'feed' })) };
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    let r: Awaited<ReturnType<TestHub['call']>>;
    try {
      r = await t.call('POST', '/v1/decisions/bulk', body);
    } finally {
      store.append = realAppend;
    }
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ added: BULK_SLICE, duplicates: 0, head: head0 + BULK_SLICE });
    expect(r.json.errorCount).toBe(BULK_SLICE + 300);
    expect(r.json.errors[0]).toMatchObject({ index: BULK_SLICE, code: 'E_STORE' });
    expect(r.json.errors[0].error).toMatch(/not applied: database is locked/);
    const again = await t.call('POST', '/v1/decisions/bulk', body);
    expect(again.json).toMatchObject({ added: BULK_SLICE + 300, duplicates: BULK_SLICE, errorCount: 0 });
    expect(again.json.lastSeq).toBe(head0 + 2 * BULK_SLICE + 300);
  });

  it('fails the request as before when its first slice cannot be appended', async () => {
    store.append = () => {
      throw new RampartError('E_STORE', 'disk I/O error');
    };
    let r: Awaited<ReturnType<TestHub['call']>>;
    try {
      r = await t.call('POST', '/v1/decisions/bulk', {
        decisions: addrs(10, 30_000).map((target) => ({ target })),
      });
    } finally {
      store.append = realAppend;
    }
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(r.json.code).toBe('E_STORE');
  });
});

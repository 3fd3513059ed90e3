import { describe, expect, it } from 'vitest';
import { PACKED_DECISIONS } from '../../src/core/packed-decisions.js';
import { PackedReaders } from '../../src/hub/packed-readers.js';

const nodes = new Map([
  ['a', 1],
  ['b', 2],
]);

describe('packed readers, several hubs on one store', () => {
  it('a hub that heard only some heartbeats learns the rest from what the store recorded', () => {
    const r = new PackedReaders();
    // This hub took a's heartbeat; b's went to the other hub.
    expect(r.heartbeat('a', [PACKED_DECISIONS], 1000)).toBe(PACKED_DECISIONS);
    expect(r.all(nodes, 1000)).toBe(false);
    r.recorded('b', PACKED_DECISIONS, 1500);
    expect(r.all(nodes, 3000)).toBe(true);
  });

  it('takes only newer news, and what a heartbeat says is what the store keeps', () => {
    const r = new PackedReaders();
    expect(r.heartbeat('a', [], 2000)).toBe('');
    expect(r.heartbeat('b', ['x', PACKED_DECISIONS], 2000)).toBe(PACKED_DECISIONS);
    // An older row (from before this hub's own heartbeat) changes nothing.
    r.recorded('a', PACKED_DECISIONS, 1500);
    expect(r.all(nodes, 2000)).toBe(false);
    // A newer one does; and a node that never sent one through any hub stays unknown.
    r.recorded('a', PACKED_DECISIONS, 2500);
    expect(r.all(nodes, 4000)).toBe(true);
    r.recorded('b', null, 9000);
    r.recorded('b', '', null);
    expect(r.all(nodes, 6000)).toBe(true);
    r.recorded('b', '', 5000);
    expect(r.all(nodes, 7000)).toBe(false);
  });

  it('asks for a read of the store when a node was not heard, at most every 2 s unless a node was enrolled or removed', () => {
    const r = new PackedReaders();
    r.heartbeat('a', [PACKED_DECISIONS], 1000);
    // b unheard here: the store may hold what another hub heard.
    expect(r.all(nodes, 1000)).toBe(false);
    expect(r.wantsStoreRead(1000)).toBe(true);
    expect(r.wantsStoreRead(1500)).toBe(false);
    r.forget('c');
    expect(r.wantsStoreRead(1600)).toBe(true);
    expect(r.wantsStoreRead(2900)).toBe(false);
    expect(r.wantsStoreRead(3700)).toBe(true);
    // b said it does not read packed runs: the store knows no more than this hub.
    r.heartbeat('b', [], 4000);
    expect(r.all(nodes, 4000)).toBe(false);
    expect(r.wantsStoreRead(9000)).toBe(false);
  });
});

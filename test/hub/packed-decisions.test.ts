import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/core/decision.js';
import { MAX_PACKED, packDecisions, packedSeqs, unpackDecisions } from '../../src/core/packed-decisions.js';

const decision = (seq: number, over: Partial<Decision> = {}): Decision => ({
  id: `id-${seq}`,
  seq,
  action: 'ban',
  target: `192.0.2.${seq}`,
  family: 4,
  duration: 600,
  expiresAt: 1_000_000 + 600_000,
  reason: 'sshd',
  rule: 'sshd',
  origin: 'node-a',
  createdAt: 1_000_000,
  set: 'blocklist',
  ...over,
});

describe('packed decision runs', () => {
  it('writes a shared field once and a varying one as an array, and reads back the same run without ids', () => {
    const run = [
      decision(7),
      decision(8, { origin: 'node-b', expiresAt: null, duration: null }),
      decision(9),
    ];
    const body = packDecisions(run)!;
    expect(body).toMatchObject({
      seq: 7,
      n: 3,
      action: 'ban',
      reason: 'sshd',
      set: 'blocklist',
      createdAt: 1_000_000,
    });
    expect(body.origin).toEqual(['node-a', 'node-b', 'node-a']);
    expect(body.target).toEqual(['192.0.2.7', '192.0.2.8', '192.0.2.9']);
    expect('id' in body).toBe(false);
    const back = unpackDecisions(JSON.parse(JSON.stringify(body)));
    expect(back).toEqual(run.map((d) => ({ ...d, id: '' })));
    expect(packedSeqs(body)).toEqual({ first: 7, last: 9 });
  });

  it('leaves a run with a hole in its seqs unpacked', () => {
    expect(packDecisions([decision(1), decision(3)])).toBeUndefined();
    expect(packDecisions([decision(2), decision(1)])).toBeUndefined();
    expect(packDecisions([])).toBeUndefined();
  });

  it('reads nothing from a body that is not a run', () => {
    const body = packDecisions([decision(1), decision(2)])!;
    for (const bad of [
      null,
      [body],
      { ...body, seq: 0 },
      { ...body, seq: 1.5 },
      { ...body, n: 0 },
      { ...body, n: MAX_PACKED + 1 },
      { ...body, target: ['192.0.2.1'] },
      { ...body, reason: ['a', 'b', 'c'] },
    ])
      expect(unpackDecisions(bad)).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { FleetCounter, type FleetCounterOptions, type FleetRule } from '../../src/hub/fleet-counter.js';

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;
const ADDR = '198.51.100.77';

function counter(
  more: Partial<FleetCounterOptions> = {},
  rule: FleetRule = { maxretry: 10, findtime: 3600 },
) {
  return new FleetCounter({
    rules: new Map([['sshd', rule]]),
    perNode: 2,
    minNodes: 2,
    maxEntries: 1000,
    ...more,
  });
}

describe('FleetCounter', () => {
  it('bans when hits from enough nodes reach maxretry within the window, and reports hits and nodes', () => {
    const c = counter();
    for (let n = 1; n <= 4; n++) expect(c.add(`web${n}`, 'sshd', ADDR, 2, T0 + n)).toBeNull();
    expect(c.peek('sshd', ADDR, T0 + 5)).toEqual({ hits: 8, nodes: 4 });
    const crossing = c.add('web5', 'sshd', ADDR, 2, T0 + 5);
    expect(crossing).toMatchObject({ rule: 'sshd', target: ADDR, hits: 10, nodes: 5 });
    // The entry is cleared: the next hits start a new count.
    expect(c.size).toBe(0);
  });

  it('counts a node for at most perNode hits of one address per window, whatever it claims', () => {
    const c = counter();
    expect(c.add('evil', 'sshd', ADDR, 1000, T0)).toBeNull();
    for (let i = 1; i < 50; i++) expect(c.add('evil', 'sshd', ADDR, 5, T0 + i)).toBeNull();
    expect(c.peek('sshd', ADDR, T0 + 50)).toEqual({ hits: 2, nodes: 1 });
    // Four honest nodes with two each: 2 + 8 = 10 crosses; the liar alone never could.
    for (let n = 1; n <= 3; n++) expect(c.add(`web${n}`, 'sshd', ADDR, 2, T0 + 100)).toBeNull();
    expect(c.add('web4', 'sshd', ADDR, 2, T0 + 100)).toMatchObject({ hits: 10, nodes: 5 });
  });

  it('needs minNodes distinct nodes even when the hits reach maxretry', () => {
    const c = counter({ minNodes: 3 }, { maxretry: 2, findtime: 3600 });
    expect(c.add('web1', 'sshd', ADDR, 2, T0)).toBeNull();
    expect(c.add('web2', 'sshd', ADDR, 1, T0 + 1)).toBeNull();
    expect(c.peek('sshd', ADDR, T0 + 1)).toEqual({ hits: 3, nodes: 2 });
    expect(c.add('web3', 'sshd', ADDR, 1, T0 + 2)).toMatchObject({ hits: 4, nodes: 3 });
  });

  it("keeps a node's newest hits: a node that keeps seeing the address stays counted", () => {
    const c = counter({}, { maxretry: 4, findtime: 3600 });
    c.add('web1', 'sshd', ADDR, 2, T0);
    c.add('web1', 'sshd', ADDR, 2, T0 + 0.9 * HOUR);
    // The first two are past the window now, the refreshed ones are not.
    expect(c.peek('sshd', ADDR, T0 + 1.5 * HOUR)).toEqual({ hits: 2, nodes: 1 });
    expect(c.add('web2', 'sshd', ADDR, 2, T0 + 1.5 * HOUR)).toMatchObject({ hits: 4, nodes: 2 });
  });

  it('forgets hits older than the window (hub time)', () => {
    const c = counter();
    for (let n = 1; n <= 4; n++) c.add(`web${n}`, 'sshd', ADDR, 2, T0);
    // One hour later, the earlier eight are out of the window: the fifth node alone is 2.
    expect(c.add('web5', 'sshd', ADDR, 2, T0 + HOUR)).toBeNull();
    expect(c.peek('sshd', ADDR, T0 + HOUR)).toEqual({ hits: 2, nodes: 1 });
    expect(c.sweep(T0 + HOUR)).toBe(0);
    expect(c.sweep(T0 + 2 * HOUR)).toBe(1);
    expect(c.size).toBe(0);
  });

  it('counts each rule on its own window and ignores rules without a fleet threshold', () => {
    const c = new FleetCounter({
      rules: new Map([
        ['sshd', { maxretry: 4, findtime: 3600 }],
        ['postfix', { maxretry: 4, findtime: 60 }],
      ]),
      perNode: 2,
      minNodes: 2,
      maxEntries: 100,
    });
    expect(c.counts('nginx')).toBe(false);
    expect(c.add('web1', 'nginx', ADDR, 2, T0)).toBeNull();
    expect(c.size).toBe(0);
    c.add('web1', 'sshd', ADDR, 2, T0);
    c.add('web1', 'postfix', ADDR, 2, T0);
    expect(c.add('web2', 'postfix', ADDR, 2, T0 + 61_000)).toBeNull();
    expect(c.add('web2', 'sshd', ADDR, 2, T0 + 61_000)).toMatchObject({ rule: 'sshd', hits: 4 });
  });

  it('stays within maxEntries under a flood of addresses, counting evictions', () => {
    let evicted = 0;
    const c = counter({
      maxEntries: 1000,
      onEvict: (n) => {
        evicted += n;
      },
    });
    for (let i = 0; i < 200_000; i++) {
      c.add('web1', 'sshd', `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`, 1, T0 + i);
    }
    expect(c.size).toBe(1000);
    expect(c.evictions).toBe(199_000);
    expect(evicted).toBe(199_000);
  });

  it('evicts the least-hit of the oldest entries, so an address many nodes see survives a flood', () => {
    const c = counter({ maxEntries: 100 });
    // The attacker seen by four nodes is the oldest entry, then one-hit noise fills the table.
    for (let n = 1; n <= 4; n++) c.add(`web${n}`, 'sshd', ADDR, 2, T0);
    for (let i = 0; i < 5000; i++) c.add('web9', 'sshd', `203.0.113.${i % 250}`, 1, T0 + 1 + i);
    for (let i = 0; i < 5000; i++) c.add('web9', 'sshd', `192.0.2.${i % 250}`, 1, T0 + 6000 + i);
    expect(c.size).toBe(100);
    expect(c.peek('sshd', ADDR, T0 + 20_000)).toEqual({ hits: 8, nodes: 4 });
    expect(c.add('web5', 'sshd', ADDR, 2, T0 + 20_000)).toMatchObject({ hits: 10, nodes: 5 });
  });

  it('evicts an expired entry before a live one', () => {
    const c = counter({ maxEntries: 2 });
    c.add('web1', 'sshd', '192.0.2.1', 1, T0);
    c.add('web1', 'sshd', '192.0.2.2', 2, T0 + HOUR);
    c.add('web2', 'sshd', '192.0.2.2', 1, T0 + HOUR);
    c.add('web1', 'sshd', '192.0.2.3', 1, T0 + HOUR + 1);
    expect(c.peek('sshd', '192.0.2.1', T0 + HOUR + 1).hits).toBe(0);
    expect(c.peek('sshd', '192.0.2.2', T0 + HOUR + 1)).toEqual({ hits: 3, nodes: 2 });
    expect(c.evictions).toBe(1);
  });
});

import { describe, expect, it } from 'vitest';
import type { ApplierStats } from '../../src/agent/applier.js';
import { FleetHitBatcher } from '../../src/agent/fleet-hits.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { type HitsBody, MAX_HITS_ENTRIES } from '../../src/core/fleet-hits.js';
import { parseHitsBody } from '../../src/core/fleet-hits-check.js';
import { DropCounter } from '../../src/trust/drop-counter.js';

function recorder(opts: Partial<ConstructorParameters<typeof FleetHitBatcher>[0]> = {}) {
  const sent: HitsBody[] = [];
  let clock = 1_000_000;
  const b = new FleetHitBatcher({
    send: async (body) => {
      sent.push(body);
    },
    now: () => clock,
    ...opts,
  });
  return {
    b,
    sent,
    tick: (ms: number) => {
      clock += ms;
    },
  };
}

describe('FleetHitBatcher', () => {
  it('coalesces hits per (address, rule) into one entry each, in a body the hub accepts', async () => {
    const { b, sent } = recorder();
    b.add('sshd', '198.51.100.7');
    b.add('sshd', '198.51.100.7');
    b.add('postfix', '198.51.100.7');
    b.add('sshd', '2001:db8:1::/64');
    await b.flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.entries).toEqual([
      { target: '198.51.100.7', rule: 'sshd', hits: 2 },
      { target: '2001:db8:1::/64', rule: 'sshd', hits: 1 },
      { target: '198.51.100.7', rule: 'postfix', hits: 1 },
    ]);
    expect(parseHitsBody(sent[0]).ok).toBe(true);
    // Nothing pending: no empty batch.
    await b.flush();
    expect(sent).toHaveLength(1);
  });

  it('caps the entries of a batch and counts the addresses it had to drop', async () => {
    const { b, sent, tick } = recorder({ maxEntries: 10 });
    for (let i = 0; i < 25; i++) b.add('sshd', `203.0.113.${i}`);
    // Hits for an address already pending still count while the batch is full.
    b.add('sshd', '203.0.113.0');
    expect(b.size).toBe(10);
    expect(b.stats.dropped).toBe(15);
    tick(1000);
    await b.flush();
    expect(sent[0]!.entries).toHaveLength(10);
    expect(sent[0]!.entries[0]).toEqual({ target: '203.0.113.0', rule: 'sshd', hits: 2 });
    await b.close();
  });

  it('never sends more than MAX_HITS_ENTRIES in one batch, whatever it is configured with', async () => {
    const { b, sent } = recorder({ maxEntries: 100_000 });
    for (let i = 0; i < 1000; i++) b.add('sshd', `2001:db8::${i.toString(16)}`);
    await b.flush();
    expect(sent[0]!.entries).toHaveLength(MAX_HITS_ENTRIES);
    expect(b.stats.dropped).toBe(1000 - MAX_HITS_ENTRIES);
    await b.close();
  });

  it('saturates one entry at the per-entry maximum instead of overflowing the schema', async () => {
    const { b, sent } = recorder();
    for (let i = 0; i < 5000; i++) b.add('sshd', '198.51.100.9');
    await b.flush();
    expect(sent[0]!.entries[0]!.hits).toBe(1000);
    expect(parseHitsBody(sent[0]).ok).toBe(true);
  });

  it('keeps to its batch rate: a second flush within minGapMs waits', async () => {
    const { b, sent, tick } = recorder({ minGapMs: 500 });
    b.add('sshd', '198.51.100.1');
    await b.flush();
    b.add('sshd', '198.51.100.2');
    tick(100);
    await b.flush();
    expect(sent).toHaveLength(1);
    expect(b.size).toBe(1);
    tick(400);
    await b.flush();
    expect(sent).toHaveLength(2);
    await b.close();
  });

  it('sends on its interval, and once more on close', async () => {
    const sent: HitsBody[] = [];
    let got!: () => void;
    const first = new Promise<void>((r) => {
      got = r;
    });
    const b = new FleetHitBatcher({
      intervalMs: 20,
      send: async (body) => {
        sent.push(body);
        got();
      },
    });
    b.start();
    b.add('sshd', '198.51.100.3');
    await first;
    expect(sent[0]!.entries).toEqual([{ target: '198.51.100.3', rule: 'sshd', hits: 1 }]);
    b.add('sshd', '198.51.100.4');
    await b.close();
    expect(sent.at(-1)!.entries).toEqual([{ target: '198.51.100.4', rule: 'sshd', hits: 1 }]);
    b.add('sshd', '198.51.100.5');
    expect(b.size).toBe(0);
  });

  it('counts a batch whose delivery failed and goes on', async () => {
    const b = new FleetHitBatcher({ minGapMs: 0, send: () => Promise.reject(new Error('hub down')) });
    b.add('sshd', '198.51.100.6');
    await b.flush();
    expect(b.stats).toMatchObject({ batches: 1, failed: 1, entries: 1 });
  });
});

describe('agent fleet metrics', () => {
  it('serve what the batcher counted at scrape time', async () => {
    const b = new FleetHitBatcher({
      maxEntries: 2,
      minGapMs: 0,
      send: () => Promise.reject(new Error('down')),
    });
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) b.add('sshd', ip);
    await b.close();
    const stats = { badSet: 0, protected: 0, allowlisted: 0, invalid: 0 } as ApplierStats;
    const text = await new AgentMetrics({
      drops: new DropCounter(),
      stats,
      detector: () => undefined,
      bansByRule: new Map(),
      setSizes: () => [],
      appliedSeq: () => 0,
      headSeen: () => 0,
      firewall: () => ({ backend: 'dry-run', driver: 'none' }),
      busConnected: () => undefined,
      fleet: b.stats,
    }).registry.metrics();
    expect(text).toMatch(/^rampart_agent_fleet_hits_total\{result="sent"\} 2$/m);
    expect(text).toMatch(/^rampart_agent_fleet_hits_total\{result="dropped"\} 1$/m);
    expect(text).toMatch(/^rampart_agent_fleet_batches_total\{result="failed"\} 1$/m);
  });
});

describe('hits body contract', () => {
  it('refuses unknown fields, wrong types, empty and oversized batches, and non-addresses', () => {
    const good = { entries: [{ target: '198.51.100.7', rule: 'sshd', hits: 2 }] };
    expect(parseHitsBody(good)).toMatchObject({ ok: true, entries: [{ target: '198.51.100.7' }] });
    const bad: unknown[] = [
      null,
      [],
      { entries: [] },
      { entries: good.entries, extra: 1 },
      { entries: [{ ...good.entries[0], at: 5 }] },
      { entries: [{ target: '198.51.100.7', rule: 'sshd', hits: '2' }] },
      { entries: [{ target: '198.51.100.7', rule: 'sshd', hits: 0 }] },
      { entries: [{ target: '198.51.100.7', rule: 'sshd', hits: 1.5 }] },
      { entries: [{ target: '198.51.100.7', rule: 'ssh d', hits: 1 }] },
      { entries: [{ target: 'example.com', rule: 'sshd', hits: 1 }] },
      { entries: Array.from({ length: MAX_HITS_ENTRIES + 1 }, () => good.entries[0]) },
    ];
    for (const body of bad) expect(parseHitsBody(body).ok, JSON.stringify(body)?.slice(0, 80)).toBe(false);
  });

  it('returns targets canonical', () => {
    const r = parseHitsBody({ entries: [{ target: '2001:DB8:0:0::1', rule: 'sshd', hits: 1 }] });
    expect(r.ok && r.entries[0]!.target).toBe('2001:db8::1');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { seal } from '../../src/trust/envelope.js';
import type { KeyPair } from '../../src/trust/keys.js';
import { nodeBusClient, startTestHub, type TestHub } from './helpers.js';

/**
 * The hub's side of fleet-wide counting against a real hub: sealed `hits` envelopes over HTTP
 * and the embedded bus, the strict body contract, and fleet bans through the normal policy path.
 */
describe('hub: fleet-wide counting of hits envelopes', () => {
  let t: TestHub;
  const nodes: Array<{ name: string; keys: KeyPair; token: string }> = [];

  beforeAll(async () => {
    // sshd: 4 fleet hits in 1 h (the shipped default is 10); N = 2 per node, K = 2 nodes.
    t = await startTestHub({
      policy: { fleet: { rules: { sshd: { maxretry: 4, findtime: 3600 } } } },
      allowlist: ['192.0.2.0/28'],
    });
    for (const name of ['web1', 'web2', 'web3']) nodes.push({ name, ...(await t.enrol(name)) });
  }, 30_000);

  afterAll(async () => {
    await t?.close();
  });

  const post = (i: number, body: unknown, kind = 'hits') => {
    const n = nodes[i]!;
    return t.call('POST', '/v1/reports', seal(kind, body, n.name, n.keys.privateKey).toString(), n.token);
  };
  const hits = (target: string, n: number, rule = 'sshd') => ({ entries: [{ target, rule, hits: n }] });
  const metric = async (name: string, labels: Record<string, string> = {}) =>
    t.hub.metrics.value(name, labels);

  it('one node alone never bans, however many hits it claims', async () => {
    for (let k = 0; k < 5; k++)
      expect((await post(0, hits('198.51.100.60', 1000))).json).toEqual({ result: 'counted' });
    expect(t.hub.core.fleetCounter!.peek('sshd', '198.51.100.60', Date.now())).toEqual({ hits: 2, nodes: 1 });
    expect((await t.call('GET', '/v1/bans')).json.items.map((d: Decision) => d.target)).not.toContain(
      '198.51.100.60',
    );
  });

  it('hits from two nodes reaching the threshold make one ban, origin fleet, naming nodes and hits', async () => {
    await post(0, hits('198.51.100.61', 2));
    const r = await post(1, hits('198.51.100.61', 2));
    expect(r.json).toEqual({ result: 'counted' });
    const d = (await t.hub.store.activeFor('198.51.100.61', 'blocklist', Date.now()))!;
    expect(d).toMatchObject({ origin: 'fleet', rule: 'sshd', action: 'ban', duration: 3600 });
    expect(d.reason).toBe('sshd: 4 hits from 2 nodes within 1h (fleet-wide)');
    expect(await metric('rampart_hub_fleet_bans_total', { result: 'ban' })).toBe(1);
    expect(await metric('rampart_hub_decisions_total', { action: 'ban', origin: 'fleet' })).toBe(1);
  });

  it('a repeat offender is escalated by the policy like any report', async () => {
    expect((await t.call('DELETE', '/v1/decisions/198.51.100.61')).status).toBe(200);
    await post(1, hits('198.51.100.61', 2));
    await post(2, hits('198.51.100.61', 2));
    const d = (await t.hub.store.activeFor('198.51.100.61', 'blocklist', Date.now()))!;
    expect(d).toMatchObject({ origin: 'fleet', duration: 7200 });
    expect(d.reason).toMatch(/repeat offender: ban 2/);
  });

  it('allowlisted addresses and rules without a fleet threshold are not counted', async () => {
    const before = await metric('rampart_hub_fleet_counts_total', { result: 'allowlisted' });
    await post(0, hits('192.0.2.5', 2));
    await post(1, hits('192.0.2.5', 2));
    expect(await metric('rampart_hub_fleet_counts_total', { result: 'allowlisted' })).toBe(before + 2);
    await post(0, hits('198.51.100.62', 2, 'nginx-4xx'));
    expect(await metric('rampart_hub_fleet_counts_total', { result: 'unknown-rule' })).toBe(1);
    expect(t.hub.core.fleetCounter!.peek('nginx-4xx', '198.51.100.62', Date.now()).hits).toBe(0);
  });

  it('a body breaking the contract is refused whole and counted as a drop', async () => {
    const before = await metric('rampart_hub_dropped_messages_total', { reason: 'invalid-body' });
    const bad = [
      { entries: [{ target: '198.51.100.63', rule: 'sshd', hits: 2, node: 'web9' }] },
      { entries: [{ target: '198.51.100.63', rule: 'sshd', hits: '2' }] },
      { entries: [{ target: '198.51.100.63', rule: 'sshd', hits: 2 }], window: 5 },
      { entries: 'all of them' },
    ];
    for (const body of bad) {
      const r = await post(0, body);
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/^hits\./);
    }
    expect(await metric('rampart_hub_dropped_messages_total', { reason: 'invalid-body' })).toBe(before + 4);
    expect(t.hub.core.fleetCounter!.peek('sshd', '198.51.100.63', Date.now()).hits).toBe(0);
  });

  it('takes hits over the bus too, under the node topic that matches the sender', async () => {
    const client = await nodeBusClient(t, 'web3', nodes[2]!.token);
    try {
      const banned = new Promise<Decision>((resolve) => {
        const off = t.hub.onDecision((d) => {
          if (d.target !== '198.51.100.64') return;
          off();
          resolve(d);
        });
      });
      await post(0, hits('198.51.100.64', 2));
      const env = seal('hits', hits('198.51.100.64', 2), 'web3', nodes[2]!.keys.privateKey);
      await client.publish(topics.reports(t.hub.fleet, 'web3'), env);
      const d = await banned;
      expect(d).toMatchObject({
        origin: 'fleet',
        reason: 'sshd: 4 hits from 2 nodes within 1h (fleet-wide)',
      });
    } finally {
      await client.close();
    }
  });

  it('serves the fleet metrics on /metrics', async () => {
    const text = (await t.call('GET', '/metrics')).text;
    for (const name of [
      'rampart_hub_fleet_counts_total{result="counted"}',
      'rampart_hub_fleet_bans_total{result="ban"}',
      'rampart_hub_fleet_table_entries',
      'rampart_hub_fleet_evictions_total',
    ]) {
      expect(text).toContain(name);
    }
  });

  it('refuses to enrol a node named fleet (the origin of fleet bans)', async () => {
    const r = await t.call('POST', '/v1/nodes', { name: 'fleet' });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/reserved/);
  });
});

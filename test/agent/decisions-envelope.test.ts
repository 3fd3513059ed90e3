import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import { HubApi } from '../../src/agent/hub-api.js';
import { AgentState } from '../../src/agent/state.js';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import { Allowlist } from '../../src/core/allowlist.js';
import type { Decision } from '../../src/core/decision.js';
import { silentLogger } from '../../src/core/logger.js';
import { MAX_PACKED, PACKED_DECISIONS, packDecisions } from '../../src/core/packed-decisions.js';
import { peek, seal } from '../../src/trust/envelope.js';
import { loadKeyPair } from '../../src/trust/keys.js';
import { startTestHub, type TestHub, until } from '../hub/helpers.js';
import { RecordingFirewall } from './recording-firewall.js';

describe('agent applying `decisions` envelopes from a real hub and broker', () => {
  let t: TestHub;
  let agent: Agent;
  let dir: string;
  let state: AgentState;
  const firewall = new RecordingFirewall();
  const kinds: string[] = [];

  beforeAll(async () => {
    t = await startTestHub();
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-bulk-'));
    state = AgentState.open(dir);
    agent = await busAgent(t, 'bulk-agent', state, firewall, {
      allowlist: new Allowlist(['198.18.0.7']),
      // The metrics are built only with a listener (ADR 0039).
      metrics: { host: '127.0.0.1', port: 0 },
    });
    // What the hub publishes, by kind: with this agent (which reads packed runs) its only node.
    await t.hub.bus.subscribe(topics.decisions('default'), (_topic, payload) => {
      const p = peek(payload, 1024 * 1024);
      if (p.ok) kinds.push(p.env.kind);
    });
    await agent.start();
    await until(() => agent.outbox.busIsUp);
    // Its first heartbeat (sent on connect) told the hub it reads `decisions-packed`.
    for (let seen = false; !seen; await new Promise((r) => setTimeout(r, 20))) {
      const nodes = (await t.call('GET', '/v1/status')).json.nodes as Array<{
        name: string;
        lastSeen: unknown;
      }>;
      seen = nodes.some((n) => n.name === 'bulk-agent' && n.lastSeen);
    }
    // The start-up catch-up has answered (empty log) before the test counts catch-ups.
    await agent.applier.catchUp();
  });
  afterAll(async () => {
    await agent?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies a bulk import live, in seq order, with no catch-up and its own allowlist kept', async () => {
    const catchUps = agent.applier.stats.catchUps;
    const targets = Array.from({ length: 1500 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: targets.map((target) => ({ target, duration: '1h' })),
    });
    expect(r.json).toMatchObject({ added: 1500, errors: [] });
    await until(() => agent.applier.stats.applied >= 1500 && firewall.pending() === 0);
    await agent.committer.flush();
    expect([...firewall.committed.values()].map((e) => e.target.text).sort()).toEqual(
      targets.filter((a) => a !== '198.18.0.7').sort(),
    );
    expect(agent.applier.stats).toMatchObject({ gaps: 0, allowlisted: 1, catchUps });
    expect(agent.drops.total()).toBe(0);
    expect(kinds).toEqual([PACKED_DECISIONS, PACKED_DECISIONS, PACKED_DECISIONS]);
  });

  it('drops a tampered `decisions` envelope whole and counts it; a good one after it applies', async () => {
    const hubKeys = loadKeyPair(join(t.dataDir, 'hub'), 'hub.key');
    const head = (await t.call('GET', '/v1/health')).json.head as number;
    const batch = [0, 1].map((i) => ({ ...decisionAt(head + 1 + i), target: `192.0.2.${50 + i}` }));
    const wire = JSON.parse(seal('decisions', batch, 'hub', hubKeys.privateKey).toString());
    wire.body = wire.body.replace('192.0.2.51', '192.0.2.99');
    const applied = agent.applier.stats.applied;
    await t.hub.bus.publish(topics.decisions('default'), Buffer.from(JSON.stringify(wire)));
    await until(() => agent.drops.get('bad-signature') === 1);
    expect(agent.applier.stats.applied).toBe(applied);
    expect([...firewall.committed.keys()].some((k) => k.includes('192.0.2.'))).toBe(false);

    // Not a list: signed, but malformed.
    await t.hub.bus.publish(
      topics.decisions('default'),
      seal('decisions', { seq: head + 1 }, 'hub', hubKeys.privateKey),
    );
    await until(() => agent.drops.get('malformed') === 1);

    // The hub's own next envelope still goes through.
    await t.call('POST', '/v1/decisions/bulk', {
      decisions: [{ target: '192.0.2.60' }, { target: '192.0.2.61' }],
    });
    await until(() => agent.applier.stats.applied === applied + 2);
    expect(agent.drops.total()).toBe(2);
    // The same counts, by reason, in the agent's Prometheus registry.
    const text = await agent.metrics!.registry.metrics();
    expect(text).toMatch(/rampart_agent_dropped_messages_total\{reason="bad-signature"\} 1/);
    expect(text).toMatch(/rampart_agent_dropped_messages_total\{reason="malformed"\} 1/);
    expect(text).toMatch(/rampart_agent_dropped_messages_total\{reason="bad-set"\} 0/);
  });

  it('drops a copy of decisions it holds before the signature check, and still checks new ones', async () => {
    const hubKeys = loadKeyPair(join(t.dataDir, 'hub'), 'hub.key');
    const held = agent.applier.stats;
    const head = (await t.call('GET', '/v1/health')).json.head as number;
    await until(() => state.lastSeq() === head);
    const forge = (seq: number): Buffer => {
      const wire = JSON.parse(
        seal(
          'decisions',
          [{ ...decisionAt(seq), target: '192.0.2.70' }],
          'hub',
          hubKeys.privateKey,
        ).toString(),
      );
      wire.body = wire.body.replace('192.0.2.70', '192.0.2.71');
      return Buffer.from(JSON.stringify(wire));
    };
    const badBefore = agent.drops.get('bad-signature');
    const dupBefore = held.duplicates;
    // Seqs it applied already: a copy, dropped without a verify (the signature here is broken).
    await t.hub.bus.publish(topics.decisions('default'), forge(head));
    await until(() => agent.applier.stats.duplicates === dupBefore + 1);
    expect(agent.drops.get('bad-signature')).toBe(badBefore);
    // A seq it has not seen: verified, so the broken signature is refused and counted.
    await t.hub.bus.publish(topics.decisions('default'), forge(head + 1));
    await until(() => agent.drops.get('bad-signature') === badBefore + 1);
    expect(state.lastSeq()).toBe(head);
    expect([...firewall.committed.keys()].some((k) => k.includes('192.0.2.7'))).toBe(false);
  });

  // Last in this block: the agent ends ahead of the hub's log.
  it('applies a signed list given out of seq order in seq order, skipping a bad element alone', async () => {
    const hubKeys = loadKeyPair(join(t.dataDir, 'hub'), 'hub.key');
    const head = (await t.call('GET', '/v1/health')).json.head as number;
    await until(() => state.lastSeq() === head);
    const malformed = agent.drops.get('malformed');
    const { duplicates, gaps } = agent.applier.stats;
    const list = [
      { ...decisionAt(head + 2), target: '192.0.2.82' },
      { ...decisionAt(head + 3), target: 'x'.repeat(65) },
      { ...decisionAt(head + 1), target: '192.0.2.81' },
    ];
    await t.hub.bus.publish(topics.decisions('default'), seal('decisions', list, 'hub', hubKeys.privateKey));
    await until(() => agent.drops.get('malformed') === malformed + 1 && state.lastSeq() === head + 2);
    await agent.committer.flush();
    // Both good ones applied, in seq order (no hole was seen before h + 1), and the bad element
    // left nothing behind: its seq is still a hole.
    expect(firewall.committed.has('blocklist|192.0.2.81')).toBe(true);
    expect(firewall.committed.has('blocklist|192.0.2.82')).toBe(true);
    expect(agent.applier.stats).toMatchObject({ duplicates, gaps });
    expect(state.lastSeq()).toBe(head + 2);
  });
});

describe('agent applying `decisions-packed` envelopes', () => {
  let t: TestHub;
  let agent: Agent;
  let dir: string;
  let state: AgentState;
  let hubKeys: ReturnType<typeof loadKeyPair>;
  const firewall = new RecordingFirewall();
  const publish = (run: Decision[] | object) =>
    t.hub.bus.publish(
      topics.decisions('default'),
      seal(PACKED_DECISIONS, Array.isArray(run) ? packDecisions(run) : run, 'hub', hubKeys.privateKey),
    );
  const head = async () => (await t.call('GET', '/v1/health')).json.head as number;

  beforeAll(async () => {
    t = await startTestHub();
    hubKeys = loadKeyPair(join(t.dataDir, 'hub'), 'hub.key');
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-packed-'));
    state = AgentState.open(dir);
    agent = await busAgent(t, 'packed-agent', state, firewall, { allowlist: new Allowlist([]) });
    await agent.start();
    await until(() => agent.outbox.busIsUp);
    await agent.applier.catchUp();
  });
  afterAll(async () => {
    await agent?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('skips a bad element of a signed run alone and counts it; the next good decision applies', async () => {
    const h = await head();
    const malformed = agent.drops.get('malformed');
    await publish([{ ...decisionAt(h + 1), target: 'x'.repeat(65) }]);
    await until(() => agent.drops.get('malformed') === malformed + 1);
    expect(state.lastSeq()).toBe(h);
    await t.call('POST', '/v1/decisions/bulk', {
      decisions: [{ target: '192.0.2.90' }, { target: '192.0.2.91' }],
    });
    await until(() => state.lastSeq() === h + 2);
    await agent.committer.flush();
    expect(firewall.committed.has('blocklist|192.0.2.91')).toBe(true);
  });

  it('drops a signed run whose columns do not match its length, whole', async () => {
    const h = await head();
    const malformed = agent.drops.get('malformed');
    const body = packDecisions([decisionAt(h + 1), { ...decisionAt(h + 2), target: '192.0.2.93' }])!;
    await publish({ ...body, target: ['192.0.2.92'] });
    await until(() => agent.drops.get('malformed') === malformed + 1);
    await publish({ ...body, n: MAX_PACKED + 1 });
    await until(() => agent.drops.get('malformed') === malformed + 2);
    expect(state.lastSeq()).toBe(h);
    expect(agent.applier.stats.gaps).toBe(0);
  });

  it('refuses a tampered run before using it, and drops a copy of held seqs before the verify', async () => {
    const h = await head();
    await until(() => state.lastSeq() === h);
    const forge = (seq: number): Buffer => {
      const wire = JSON.parse(
        seal(PACKED_DECISIONS, packDecisions([decisionAt(seq)]), 'hub', hubKeys.privateKey).toString(),
      );
      wire.body = wire.body.replace('192.0.2.70', '192.0.2.71');
      return Buffer.from(JSON.stringify(wire));
    };
    const bad = agent.drops.get('bad-signature');
    const duplicates = agent.applier.stats.duplicates;
    await t.hub.bus.publish(topics.decisions('default'), forge(h));
    await until(() => agent.applier.stats.duplicates === duplicates + 1);
    expect(agent.drops.get('bad-signature')).toBe(bad);
    await t.hub.bus.publish(topics.decisions('default'), forge(h + 1));
    await until(() => agent.drops.get('bad-signature') === bad + 1);
    expect(state.lastSeq()).toBe(h);
    expect([...firewall.committed.keys()].some((k) => k.includes('192.0.2.7'))).toBe(false);
  });
});

/** An agent enrolled in `t` as `name`, on the hub's embedded broker (not started). */
async function busAgent(
  t: TestHub,
  name: string,
  state: AgentState,
  firewall: RecordingFirewall,
  more: Pick<AgentOptions, 'allowlist' | 'metrics'>,
): Promise<Agent> {
  const node = await t.enrol(name);
  return new Agent({
    name,
    fleet: 'default',
    state,
    firewall,
    hub: new HubApi(t.hub.url, node.token),
    hubKey: t.hub.publicKey,
    privateKey: node.keys.privateKey,
    transport: new MqttClientTransport({
      url: t.hub.busInfo.url,
      clientId: `${name}-${process.pid}`,
      username: name,
      password: node.token,
      clean: true,
      connectTimeoutMs: 5000,
    }),
    log: silentLogger(),
    // As under `rampart up` on its embedded broker: copies of held decisions skip the verify.
    dropHeldCopies: true,
    ...more,
  });
}

function decisionAt(seq: number): Decision {
  return {
    id: `forged-${seq}`,
    seq,
    action: 'ban',
    target: '192.0.2.70',
    family: 4,
    duration: 60,
    expiresAt: Date.now() + 60_000,
    reason: 'test',
    rule: 'manual',
    origin: 'operator',
    createdAt: Date.now(),
    set: 'blocklist',
  };
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { seal } from '../../src/trust/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/trust/keys.js';
import {
  droppedCount,
  nodeBusClient,
  onHubDecisions,
  reportBody,
  startTestHub,
  type TestHub,
} from './helpers.js';

const until = async (cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('hub report intake over the real embedded broker', () => {
  let t: TestHub;
  let node: { keys: KeyPair; token: string };
  let client: MqttClientTransport;
  const received: Decision[] = [];

  beforeAll(async () => {
    t = await startTestHub({ policy: { rateBurst: 1000 } });
    node = await t.enrol('edge1');
    client = await nodeBusClient(t, 'edge1', node.token);
    await onHubDecisions(t, client, (d) => received.push(d));
  });
  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  const reportTopic = topics.reports('default', 'edge1');
  const body = reportBody;
  const dropped = (reason: string) => droppedCount(t, reason);

  it('a signed report becomes one decision, published signed by the hub', async () => {
    const env = seal('report', body('198.51.100.7'), 'edge1', node.keys.privateKey);
    await client.publish(reportTopic, env);
    await until(() => received.some((d) => d.target === '198.51.100.7'));
    const d = received.find((x) => x.target === '198.51.100.7')!;
    expect(d).toMatchObject({ action: 'ban', origin: 'edge1', rule: 'sshd', duration: 600 });
    expect(await t.hub.store.head()).toBe(d.seq);

    // The same envelope again is a replay: counted, nothing appended.
    await client.publish(reportTopic, env);
    await until(async () => (await dropped('replay')) === 1);
    expect(await t.hub.store.head()).toBe(d.seq);
  });

  it('forged, unsigned, out-of-window and garbage reports change nothing and are counted by reason', async () => {
    const head = await t.hub.store.head();
    const stranger: KeyPair = generateKeyPair();
    const forged = seal('report', body('198.51.100.8'), 'edge1', stranger.privateKey);
    const unsigned = JSON.parse(
      seal('report', body('198.51.100.9'), 'edge1', node.keys.privateKey).toString(),
    );
    unsigned.sig = '';
    const stale = seal('report', body('198.51.100.10'), 'edge1', node.keys.privateKey, {
      ts: Date.now() - 3_600_000,
    });
    const future = seal('report', body('198.51.100.11'), 'edge1', node.keys.privateKey, {
      ts: Date.now() + 3_600_000,
    });
    const asOther = seal('report', body('198.51.100.12'), 'edge2', node.keys.privateKey);
    await client.publish(reportTopic, forged);
    await client.publish(reportTopic, Buffer.from(JSON.stringify(unsigned)));
    await client.publish(reportTopic, stale);
    await client.publish(reportTopic, future);
    await client.publish(reportTopic, asOther);
    await client.publish(reportTopic, Buffer.from([0xff, 0x00, 0x7b, 0x22]));
    await until(async () => (await dropped('malformed')) === 1);
    expect(await dropped('bad-signature')).toBe(1);
    expect(await dropped('unsigned')).toBe(1);
    expect(await dropped('expired')).toBe(1);
    expect(await dropped('future')).toBe(1);
    // Refused before any verify: the topic names edge1, the envelope edge2.
    expect(await dropped('topic-mismatch')).toBe(1);
    expect(await t.hub.store.head()).toBe(head);
    expect(received.filter((d) => d.target.startsWith('198.51.100.') && d.target !== '198.51.100.7')).toEqual(
      [],
    );
  });

  it('an allowlisted address reported by a node is refused, logged and counted, never banned', async () => {
    await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.0/28' });
    const head = await t.hub.store.head();
    await client.publish(reportTopic, seal('report', body('192.0.2.3'), 'edge1', node.keys.privateKey));
    await until(
      async () => (await t.hub.metrics.value('rampart_hub_reports_total', { result: 'allowlisted' })) === 1,
    );
    expect(await t.hub.store.head()).toBe(head);
    expect((await t.call('GET', '/v1/blocklist')).text).not.toContain('192.0.2.3');
  });

  it('ten reports of one address while banned make one decision; a heartbeat updates status', async () => {
    const before = received.length;
    for (let i = 0; i < 10; i++) {
      await client.publish(reportTopic, seal('report', body('203.0.113.200'), 'edge1', node.keys.privateKey));
    }
    await until(
      async () => (await t.hub.metrics.value('rampart_hub_reports_total', { result: 'duplicate' })) === 9,
    );
    expect(received.slice(before).filter((d) => d.target === '203.0.113.200')).toHaveLength(1);
    const head = await t.hub.store.head();
    await client.publish(
      reportTopic,
      seal('heartbeat', { lastSeq: head, active: 2, version: '0.1.0' }, 'edge1', node.keys.privateKey),
    );
    await until(async () => (await t.hub.store.getNode('edge1'))?.lastSeq === head);
    const st = await t.call('GET', '/v1/status');
    expect(st.json.nodes).toEqual([expect.objectContaining({ name: 'edge1', lag: 0, version: '0.1.0' })]);
    expect(st.json.dropped).toMatchObject({
      replay: 1,
      'bad-signature': 1,
      unsigned: 1,
      expired: 1,
      future: 1,
    });
    expect(st.json.reports).toMatchObject({ ban: 2, duplicate: 9, allowlisted: 1 });
  });

  it('the broker refuses a client without a node token', async () => {
    const intruder = new MqttClientTransport({
      url: t.hub.busInfo.url,
      clientId: `intruder-${process.pid}`,
      username: 'edge1',
      password: 'rpn1.wrong',
      clean: true,
      connectTimeoutMs: 1500,
    });
    await expect(intruder.connect()).rejects.toThrow();
    await intruder.close();
  });
});

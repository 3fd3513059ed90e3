import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import { seal } from '../../src/trust/envelope.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from './helpers.js';

const req = requirements('hub on an external Mosquitto', ['tcp:1883']);

describe.skipIf(req.skip)('hub on an external Mosquitto (127.0.0.1:1883)', () => {
  // A unique fleet keeps parallel runs on the shared broker apart.
  const fleet = `t${randomBytes(4).toString('hex')}`;
  let t: TestHub;
  let client: MqttClientTransport;

  beforeAll(async () => {
    t = await startTestHub({
      fleet,
      bus: { type: 'mqtt', url: 'mqtt://127.0.0.1:1883', clientId: `rampart-${fleet}-hub` },
    });
    client = new MqttClientTransport({
      url: 'mqtt://127.0.0.1:1883',
      clientId: `rampart-${fleet}-n1`,
      clean: true,
    });
    await client.connect();
  });
  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  it('join tells nodes the external broker, and a signed report published there becomes a published decision', async () => {
    const added = await t.call('POST', '/v1/nodes', { name: 'n1' });
    const { generateKeyPair, publicKeyToText } = await import('../../src/trust/keys.js');
    const keys = generateKeyPair();
    const joined = await t.call(
      'POST',
      '/v1/join',
      { token: added.json.token, name: 'n1', publicKey: publicKeyToText(keys.publicKey) },
      '',
    );
    expect(joined.json.bus).toEqual({ type: 'mqtt', url: 'mqtt://127.0.0.1:1883' });

    const got: Buffer[] = [];
    await client.subscribe(topics.decisions(fleet), (_t, p) => got.push(p));
    const body = {
      target: '198.51.100.200',
      rule: 'sshd',
      reason: '',
      hits: 3,
      duration: 60,
      at: Date.now(),
    };
    await client.publish(topics.reports(fleet, 'n1'), seal('report', body, 'n1', keys.privateKey));
    const end = Date.now() + 5000;
    while (got.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(1);
    expect(JSON.parse(got[0]!.toString())).toMatchObject({ kind: 'decision', from: 'hub' });
    expect((await t.call('GET', '/v1/blocklist')).text).toBe('198.51.100.200\n');
  });
});

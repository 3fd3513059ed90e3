import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';

/**
 * The embedded broker stops reading a node's connections when told to (the hub's answer to a
 * node it keeps refusing): what that node sends waits, nothing is lost, other nodes go on.
 */
describe('embedded broker: holding a node', () => {
  let broker: EmbeddedMqttBroker;
  const clients: MqttClientTransport[] = [];
  const arrived = new Map<string, number>();

  beforeAll(async () => {
    broker = new EmbeddedMqttBroker({ port: 0, authenticate: (u, p) => p === `pw-${u}` });
    await broker.connect();
    await broker.subscribe('rampart/f/reports/+', (_topic, payload) => {
      arrived.set(payload.toString(), performance.now());
    });
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await broker.close();
  });

  const client = async (name: string) => {
    const c = new MqttClientTransport({
      url: `mqtt://127.0.0.1:${broker.port}`,
      clientId: `hold-${name}-${process.pid}`,
      username: name,
      password: `pw-${name}`,
      clean: true,
    });
    await c.connect();
    clients.push(c);
    return c;
  };

  it('a held node’s messages arrive only after the hold, in order and all of them; another node’s at once', async () => {
    const a = await client('a');
    const b = await client('b');
    expect(broker.throttle('nobody', 1_000)).toBe(0);
    expect(broker.throttle('a', 600)).toBe(1);
    const t0 = performance.now();
    const fromA = Array.from({ length: 50 }, (_, i) =>
      a.publish('rampart/f/reports/a', Buffer.from(`a${i}`)),
    );
    await b.publish('rampart/f/reports/b', Buffer.from('b0'));
    expect(arrived.has('b0')).toBe(true);
    expect([...arrived.keys()].some((k) => k.startsWith('a'))).toBe(false);
    await Promise.all(fromA);
    const end = Date.now() + 5_000;
    while (!arrived.has('a49') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    const first = arrived.get('a0')!;
    expect(first - t0).toBeGreaterThanOrEqual(500);
    expect(first).toBeGreaterThan(arrived.get('b0')!);
    for (let i = 1; i < 50; i++)
      expect(arrived.get(`a${i}`)!).toBeGreaterThanOrEqual(arrived.get(`a${i - 1}`)!);
  });

  it('a held node that logs in again on a new connection is still held', async () => {
    expect(broker.throttle('c', 600)).toBe(0);
    const t0 = performance.now();
    const c = await client('c');
    await c.publish('rampart/f/reports/c', Buffer.from('c0'));
    const end = Date.now() + 5_000;
    while (!arrived.has('c0') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(arrived.get('c0')! - t0).toBeGreaterThanOrEqual(500);
  });
});

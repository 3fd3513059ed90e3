import { createServer, type Server } from 'node:net';
import { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { clientWithoutConnect } from '../../src/bus/mqtt-stream.js';
import { Inbox } from './contract.js';

/** A port nothing listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('mqtt clients built without connect()', () => {
  let broker: EmbeddedMqttBroker;
  const transports: MqttClientTransport[] = [];
  beforeAll(async () => {
    broker = new EmbeddedMqttBroker({ port: 0 });
    await broker.connect();
  });
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
    await broker?.close();
  });

  it('leaves to connect() what it does not open itself: other schemes, credentials or a query in the URL, a SOCKS proxy', () => {
    const opts = { reconnectPeriod: 0, manualConnect: true };
    for (const url of ['ws://127.0.0.1:1', 'mqtt://u:p@127.0.0.1:1', 'mqtt://127.0.0.1:1?clientId=x'])
      expect(clientWithoutConnect(MqttClient, [url], opts)).toBeUndefined();
    expect(
      clientWithoutConnect(MqttClient, ['mqtt://127.0.0.1:1', 'ws://127.0.0.1:2'], opts),
    ).toBeUndefined();
    process.env.MQTTJS_SOCKS_PROXY = 'socks5://127.0.0.1:1';
    try {
      expect(clientWithoutConnect(MqttClient, ['mqtt://127.0.0.1:1'], opts)).toBeUndefined();
    } finally {
      delete process.env.MQTTJS_SOCKS_PROXY;
    }
    const c = clientWithoutConnect(MqttClient, ['mqtt://[::1]:1'], opts);
    expect(c).toBeInstanceOf(MqttClient);
    expect(c!.options).toMatchObject({ host: '::1', port: 1, protocol: 'mqtt' });
  });

  it('servers are tried in turn, back to the first after the last', async () => {
    const seen: string[] = [];
    const servers: Server[] = [];
    const ports: number[] = [];
    for (const name of ['a', 'b']) {
      const s = createServer((sock) => {
        seen.push(name);
        sock.destroy();
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      servers.push(s);
      ports.push((s.address() as { port: number }).port);
    }
    const urls = ports.map((p) => `mqtt://127.0.0.1:${p}`);
    const c = clientWithoutConnect(MqttClient, urls, {
      reconnectPeriod: 0,
      servers: ports.map((port) => ({ host: '127.0.0.1', port, protocol: 'mqtt' as const })),
    })!;
    try {
      for (let n = 1; n <= 3; n++) {
        await new Promise<void>((r) => c.once('close', () => r()));
        if (n < 3) c.reconnect();
      }
      expect(seen).toEqual(['a', 'b', 'a']);
    } finally {
      c.end(true);
      for (const s of servers) s.close();
    }
  });

  it('a transport whose first broker is down reaches the next one of fallbackUrls', async () => {
    const t = new MqttClientTransport({
      url: `mqtt://127.0.0.1:${await deadPort()}`,
      fallbackUrls: [`mqtt://127.0.0.1:${broker.port}`],
      clientId: 'stream-fallback',
      connectTimeoutMs: 10_000,
    });
    transports.push(t);
    await t.connect();
    const inbox = new Inbox();
    await t.subscribe('rampart/stream/decisions', inbox.handler);
    await broker.publish('rampart/stream/decisions', Buffer.from('via b'));
    await inbox.waitFor(1);
    expect(inbox.got[0]!.payload).toBe('via b');
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import type { Transport } from '../../src/bus/transport.js';
import { startTcpProxy } from './tcp-proxy.js';

export interface BrokerUnderTest {
  port: number;
  /** Extra client options, e.g. credentials. */
  username?: string;
  password?: string;
  /**
   * Builds a client of the transport under test (default: an MQTT client). `port` may be a TCP
   * proxy in front of the broker; `clean` asks for no persistent state.
   */
  client?(clientId: string, port: number, clean: boolean): Transport;
  /** Removes what persistent clients left on the broker (default: MQTT clean sessions). */
  purge?(clientIds: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** Collects messages and waits for a count, failing with what did arrive. */
export class Inbox {
  readonly got: { topic: string; payload: string; raw: Buffer }[] = [];
  private waiters: (() => void)[] = [];
  readonly handler = (topic: string, payload: Buffer) => {
    this.got.push({ topic, payload: payload.toString(), raw: Buffer.from(payload) });
    for (const w of this.waiters) w();
  };
  async waitFor(n: number, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.got.length < n) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`expected ${n} messages within ${timeoutMs} ms, got ${JSON.stringify(this.got)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
      this.waiters = [];
    }
  }
}

export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * The transport contract, run against every broker rampart supports: the embedded aedes
 * broker, Mosquitto, NATS JetStream and RabbitMQ. Each run uses its own topic prefix and client ids, and
 * purges the persistent sessions it created.
 */
export function transportContract(
  name: string,
  start: (prefix: string) => Promise<BrokerUnderTest>,
  skip = false,
): void {
  describe.skipIf(skip)(`transport contract: ${name}`, () => {
    const run = randomUUID().slice(0, 8);
    const prefix = `rampart-test/${run}`;
    let broker: BrokerUnderTest;
    const open: Transport[] = [];
    const persistentIds = new Set<string>();

    const client = (label: string, port = broker.port, extra: { clean?: boolean } = {}) => {
      const clientId = `rt-${run}-${label}`;
      if (!extra.clean) persistentIds.add(clientId);
      if (broker.client) {
        const t = broker.client(clientId, port, extra.clean ?? false);
        open.push(t);
        return t;
      }
      const t = new MqttClientTransport({
        url: `mqtt://127.0.0.1:${port}`,
        clientId,
        minReconnectMs: 100,
        maxReconnectMs: 400,
        connectTimeoutMs: 5_000,
        ...(broker.username ? { username: broker.username, password: broker.password ?? '' } : {}),
        ...extra,
      });
      open.push(t);
      return t;
    };

    beforeAll(async () => {
      broker = await start(prefix);
    });

    afterAll(async () => {
      await Promise.all(open.map((t) => t.close()));
      // Leave no persistent sessions behind on a shared broker.
      if (broker?.purge) await broker.purge([...persistentIds]);
      else
        for (const id of persistentIds) {
          const t = new MqttClientTransport({
            url: `mqtt://127.0.0.1:${broker.port}`,
            clientId: id,
            clean: true,
            connectTimeoutMs: 3_000,
            ...(broker.username ? { username: broker.username, password: broker.password ?? '' } : {}),
          });
          await t.connect().catch(() => undefined);
          await t.close();
        }
      await broker?.stop();
    });

    it(`${name} - a published message reaches a subscriber with its topic and bytes`, async () => {
      const a = client('rt-a');
      const b = client('rt-b');
      await Promise.all([a.connect(), b.connect()]);
      const inbox = new Inbox();
      await b.subscribe(`${prefix}/rt`, inbox.handler);
      const bytes = Buffer.from([0, 1, 2, 255, 10]);
      await a.publish(`${prefix}/rt`, bytes);
      await inbox.waitFor(1);
      expect(inbox.got[0]!.topic).toBe(`${prefix}/rt`);
      expect(inbox.got[0]!.raw.equals(bytes)).toBe(true);
    });

    it(`${name} - wildcards: + matches one level, # the rest`, async () => {
      const a = client('wc-a');
      const b = client('wc-b');
      await Promise.all([a.connect(), b.connect()]);
      const plus = new Inbox();
      const hash = new Inbox();
      await b.subscribe(`${prefix}/reports/+`, plus.handler);
      await b.subscribe(`${prefix}/all/#`, hash.handler);
      await a.publish(`${prefix}/reports/web1/extra`, Buffer.from('no'));
      await a.publish(`${prefix}/reports/web1`, Buffer.from('r1'));
      await a.publish(`${prefix}/all/x/y`, Buffer.from('h1'));
      await a.publish(`${prefix}/all`, Buffer.from('h0'));
      await plus.waitFor(1);
      await hash.waitFor(2);
      await new Promise((r) => setTimeout(r, 200));
      expect(plus.got.map((m) => [m.topic, m.payload])).toEqual([[`${prefix}/reports/web1`, 'r1']]);
      expect(hash.got.map((m) => m.payload).sort()).toEqual(['h0', 'h1']);
    });

    it(`${name} - QoS 1 messages published while a persistent subscriber was offline arrive when it returns`, async () => {
      const pub = client('off-pub');
      const sub = client('off-sub');
      await Promise.all([pub.connect(), sub.connect()]);
      await sub.subscribe(`${prefix}/offline`, () => undefined);
      await sub.close();
      for (const n of [1, 2, 3]) await pub.publish(`${prefix}/offline`, Buffer.from(`m${n}`));
      const again = client('off-sub');
      const inbox = new Inbox();
      await again.connect();
      await again.subscribe(`${prefix}/offline`, inbox.handler);
      await inbox.waitFor(3);
      expect(inbox.got.map((m) => m.payload)).toEqual(['m1', 'm2', 'm3']);
    });

    it(`${name} - a dropped connection reports down, reconnects, reports up, and keeps its subscriptions`, async () => {
      const proxy = await startTcpProxy(broker.port);
      try {
        const sub = client('rc-sub', proxy.port);
        const pub = client('rc-pub');
        const statuses: string[] = [];
        sub.onStatus((s) => statuses.push(s));
        await Promise.all([sub.connect(), pub.connect()]);
        const inbox = new Inbox();
        await sub.subscribe(`${prefix}/rc`, inbox.handler);
        expect(statuses).toEqual(['up']);
        proxy.dropAll();
        await waitUntil(() => statuses.length >= 3, 'down then up');
        expect(statuses).toEqual(['up', 'down', 'up']);
        await pub.publish(`${prefix}/rc`, Buffer.from('after'));
        await inbox.waitFor(1);
        expect(inbox.got[0]!.payload).toBe('after');
      } finally {
        await proxy.close();
      }
    });

    it(`${name} - publish while down fails fast with E_BUS; close is idempotent`, async () => {
      const proxy = await startTcpProxy(broker.port);
      const t = client('down', proxy.port, { clean: true });
      await t.connect();
      await proxy.close();
      await waitUntil(() => !(t as unknown as { connected: boolean }).connected, 'down');
      await expect(t.publish(`${prefix}/down`, Buffer.from('x'))).rejects.toMatchObject({ code: 'E_BUS' });
      await t.close();
      await t.close();
      await expect(t.publish(`${prefix}/down`, Buffer.from('x'))).rejects.toMatchObject({ code: 'E_BUS' });
      await expect(t.connect()).rejects.toMatchObject({ code: 'E_BUS' });
    });
  });
}

import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { Inbox } from './contract.js';

/** Sends raw bytes and resolves with how long until the broker closed the connection (or null). */
function sendRaw(port: number, bytes: Buffer, waitMs = 2_000): Promise<number | null> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = connect(port, '127.0.0.1', () => s.write(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, waitMs);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
  });
}

describe('embedded broker packet size guard', () => {
  let broker: EmbeddedMqttBroker;
  beforeAll(async () => {
    broker = new EmbeddedMqttBroker({ port: 0, maxPacketBytes: 4096 });
    await broker.connect();
  });
  afterAll(() => broker.close());

  it('packet guard - a header declaring a 10 MB packet closes the connection before the body is sent', async () => {
    // CONNECT (type 1) with remaining length 10,000,000 as a 4-byte varint, and a few body bytes.
    const len = 10_000_000;
    const varint = [(len & 0x7f) | 0x80, ((len >> 7) & 0x7f) | 0x80, ((len >> 14) & 0x7f) | 0x80, len >> 21];
    const closedAfter = await sendRaw(broker.port!, Buffer.from([0x10, ...varint, 0, 4]));
    expect(closedAfter).not.toBeNull();
  });

  it('packet guard - a malformed 5-byte remaining length closes the connection', async () => {
    expect(await sendRaw(broker.port!, Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).not.toBeNull();
  });

  it('packet guard - packets under the limit still flow; the client refuses larger ones itself', async () => {
    const c = new MqttClientTransport({
      url: `mqtt://127.0.0.1:${broker.port}`,
      clientId: 'pg-ok',
      clean: true,
      maxPacketBytes: 4096,
    });
    try {
      await c.connect();
      const inbox = new Inbox();
      await c.subscribe('pg/t', inbox.handler);
      await c.publish('pg/t', Buffer.alloc(4000, 0x62));
      await broker.publish('pg/t', Buffer.alloc(3000, 0x63));
      await inbox.waitFor(2);
      expect(inbox.got.map((m) => m.raw.length).sort()).toEqual([3000, 4000]);
      // The client refuses over-limit messages itself rather than have the broker drop it.
      await expect(c.publish('pg/t', Buffer.alloc(5000))).rejects.toThrow(
        /exceeds the 4096-byte packet limit/,
      );
      expect((c as MqttClientTransport).connected).toBe(true);
    } finally {
      await c.close();
    }
  });
});

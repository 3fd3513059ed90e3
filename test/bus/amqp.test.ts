import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../src/bus/amqp.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { requirements } from '../helpers/requirements.js';
import { Inbox, transportContract, waitUntil } from './contract.js';

const req = requirements('bus: RabbitMQ (AMQP 0-9-1) contract', ['tcp:5672', 'cmd:rabbitmqctl', 'root']);

describe.skipIf(req.skip)('amqp', () => {
  let vh: TestVhost;
  beforeAll(async () => {
    vh = await createTestVhost();
  }, 60_000);
  afterAll(async () => {
    await vh?.remove();
  }, 60_000);

  const make = (clientId: string, port: number, clean: boolean) =>
    new AmqpTransport({
      urls: [vh.url(port)],
      clientId,
      clean,
      minReconnectMs: 100,
      maxReconnectMs: 400,
      connectTimeoutMs: 10_000,
    });

  transportContract('rabbitmq', async () => ({
    port: 5672,
    client: make,
    // The vhost is deleted afterwards, queues and all.
    purge: async () => undefined,
    stop: async () => undefined,
  }));

  it('rabbitmq - a handler that fails is requeued and delivered again; ack only after it succeeds', async () => {
    const pub = make('rq-pub', 5672, true);
    const sub = make('rq-sub', 5672, false);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      let calls = 0;
      const inbox = new Inbox();
      await sub.subscribe('rampart/rq/decisions', async (topic, payload) => {
        calls++;
        if (calls === 1) throw new Error('firewall commit failed');
        inbox.handler(topic, payload);
      });
      await pub.publish('rampart/rq/decisions', Buffer.from('d1'));
      await inbox.waitFor(1, 10_000);
      expect(calls).toBe(2);
      expect(inbox.got[0]!.payload).toBe('d1');
    } finally {
      await pub.close();
      await sub.close();
    }
  });

  it('rabbitmq - a handler that finishes while the transport closes does not throw out of the process', async () => {
    const pub = make('late-pub', 5672, true);
    const sub = make('late-sub', 5672, false);
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let entered!: () => void;
      const inHandler = new Promise<void>((r) => {
        entered = r;
      });
      await sub.subscribe('rampart/late/decisions', async () => {
        entered();
        await held;
      });
      await pub.publish('rampart/late/decisions', Buffer.from('d1'));
      await inHandler;
      // The ack comes due while the connection is closing (before the fix: IllegalOperationError
      // "Connection closing" as an unhandled rejection, which ends a process).
      const closing = sub.close();
      release();
      await closing;
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await pub.close();
      await sub.close();
      const cleanup = make('late-sub', 5672, false);
      await cleanup.connect();
      await cleanup.deleteQueue();
      await cleanup.close();
    }
  });

  it('rabbitmq - the broker closing every connection mid-stream loses nothing', async () => {
    const pub = make('cc-pub', 5672, true);
    const sub = make('cc-sub', 5672, false);
    try {
      const statuses: string[] = [];
      sub.onStatus((st) => statuses.push(st));
      await Promise.all([pub.connect(), sub.connect()]);
      const inbox = new Inbox();
      await sub.subscribe('rampart/cc/decisions', inbox.handler);
      const sent: string[] = [];
      for (let i = 0; i < 60; i++) {
        if (i === 20) await vh.closeConnections();
        for (;;) {
          const ok = await pub.publish('rampart/cc/decisions', Buffer.from(`m${i}`)).then(
            () => true,
            () => false,
          );
          if (ok) break;
          await waitUntil(() => pub.connected, 'publisher back', 10_000);
        }
        sent.push(`m${i}`);
      }
      await waitUntil(() => new Set(inbox.got.map((m) => m.payload)).size === 60, 'all 60 delivered', 15_000);
      expect([...new Set(inbox.got.map((m) => m.payload))].sort()).toEqual(sent.sort());
      expect(statuses).toContain('down');
    } finally {
      await pub.close();
      await sub.close();
    }
  }, 40_000);
  it('rabbitmq - a backlog delivered while the transport still connects is acknowledged', async () => {
    const pub = make('bl-pub', 5672, true);
    const first = make('bl-sub', 5672, false);
    const topic = 'rampart/bl/decisions';
    try {
      // The durable queue and its binding exist; its node is away while 30 messages arrive.
      await first.subscribe(topic, () => undefined);
      await Promise.all([pub.connect(), first.connect()]);
      await first.close();
      for (let i = 0; i < 30; i++) await pub.publish(topic, Buffer.from(`m${i}`));
      // The backlog comes as soon as the consumer starts, before the dial has finished.
      const second = make('bl-sub', 5672, false);
      const backlog = new Inbox();
      await second.subscribe(topic, backlog.handler);
      await second.connect();
      await backlog.waitFor(30, 10_000);
      // The acks go out in the handlers' continuations. The broker's own count says when they
      // arrived: a quorum queue applies them through its log, and a channel closed right after
      // them could have its messages returned first under load (seen in CI: m10-m29 redelivered).
      // Acks that were never sent (the defect this guards) leave `unacked` at 30 and fail here.
      const settledBy = Date.now() + 20_000;
      for (;;) {
        const counts = await vh.queueCounts('bl-sub');
        if (counts?.unacked === 0 && counts.ready === 0) break;
        if (Date.now() > settledBy) throw new Error(`backlog not acknowledged: ${JSON.stringify(counts)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await second.close();
      // Anything left unacknowledged is requeued at the head on close, ahead of nothing else.
      const third = make('bl-sub', 5672, false);
      const after = new Inbox();
      await third.subscribe(topic, after.handler);
      await third.connect();
      await pub.publish(topic, Buffer.from('last'));
      await after.waitFor(1, 10_000);
      await third.deleteQueue();
      await third.close();
      expect(after.got.map((m) => m.payload)).toEqual(['last']);
    } finally {
      await pub.close();
      await first.close();
    }
  }, 40_000);
});

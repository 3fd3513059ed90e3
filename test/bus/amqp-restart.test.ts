import { afterEach, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../src/bus/amqp.js';
import { type PrivateRabbitmq, startPrivateRabbitmq } from '../helpers/private-rabbitmq.js';
import { requirements } from '../helpers/requirements.js';
import { Inbox } from './contract.js';

const req = requirements('bus: RabbitMQ restarted under the transport', [
  'root',
  'file:/usr/lib/rabbitmq/bin/rabbitmq-server',
  'file:/var/lib/rabbitmq/.erlang.cookie',
]);

/* A private node really stopped and started again (test/helpers/private-rabbitmq.ts), not only its
   connections closed: the durable quorum queue must serve the subscriber again afterwards. */
describe.skipIf(req.skip)('amqp: broker restarted', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });

  const make = (rmq: PrivateRabbitmq, clientId: string, clean: boolean) => {
    const t = new AmqpTransport({
      urls: [rmq.url],
      clientId,
      clean,
      minReconnectMs: 200,
      maxReconnectMs: 2_000,
      connectTimeoutMs: 60_000,
      queueTimeoutMs: 5_000,
    });
    cleanup.push(() => t.close());
    return t;
  };

  /** Resolves at the transport's next status `s`. */
  const next = (t: AmqpTransport, s: 'up' | 'down') =>
    new Promise<void>((resolve) => t.onStatus((now) => now === s && resolve()));

  for (const how of ['graceful', 'kill'] as const) {
    it(`rabbitmq restarted (${how}): the subscriber's queue serves again and nothing is lost`, async () => {
      const rmq = await startPrivateRabbitmq(4_096);
      cleanup.push(() => rmq.stop());
      const pub = make(rmq, 'restart-pub', true);
      const sub = make(rmq, 'restart-sub', false);
      const inbox = new Inbox();
      await sub.subscribe('rampart/rs/decisions', inbox.handler);
      await Promise.all([pub.connect(), sub.connect()]);
      await pub.publish('rampart/rs/decisions', Buffer.from('before'));
      await inbox.waitFor(1, 10_000);

      // A queue declared just before a SIGKILL came back leaderless on RabbitMQ 3.10 (ADR 0062).
      const down = next(sub, 'down');
      const upAgain = Promise.all([next(sub, 'up'), next(pub, 'up')]);
      await rmq.restart(how);
      await down;
      await upAgain;
      await pub.publish('rampart/rs/decisions', Buffer.from('after'));
      await inbox.waitFor(2, 30_000);
      expect(inbox.got.map((m) => m.payload)).toEqual(['before', 'after']);
    }, 300_000);
  }
});

import { readFileSync } from 'node:fs';
import { type ChannelModel, type ConfirmChannel, type ConsumeMessage, connect, type Options } from 'amqplib';
import { RampartError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Broker } from './config.js';

export interface LinkOptions {
  broker: Broker;
  log: Logger;
  /** Queues declared (durable) on every (re)connect, so messages for an absent reader are kept. */
  queues: string[];
  /** The queue to read, one message at a time; each is acknowledged after `onMessage` settles. */
  consume?: { queue: string; onMessage: (body: Buffer) => Promise<void> };
  /** Longest pause between reconnect attempts; default 10000 ms. */
  maxBackoffMs?: number;
}

function connectOptions(b: Broker): [Options.Connect, object] {
  const opts: Options.Connect = {
    protocol: b.tls ? 'amqps' : 'amqp',
    hostname: b.host,
    port: b.port,
    username: b.user,
    password: b.password,
    vhost: b.vhost,
    heartbeat: 30,
  };
  let socket: object = {};
  if (b.tls && b.caFile) {
    try {
      socket = { ca: [readFileSync(b.caFile)] };
    } catch (err) {
      throw new RampartError('E_CONFIG', `cafile ${b.caFile}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }
  return [opts, socket];
}

/**
 * One RabbitMQ connection that comes back by itself: durable queues declared on every connect,
 * persistent messages published on a confirm channel (a publish resolves once the broker has
 * the message), and a consumer with prefetch 1 that acknowledges a message only after it was
 * handled, so a crash in between redelivers it instead of losing it (the original acknowledged
 * first).
 */
export class AmqpLink {
  private conn: ChannelModel | undefined;
  private ch: ConfirmChannel | undefined;
  private closed = false;
  private loop: Promise<void> | undefined;
  private upWaiters: Array<() => void> = [];
  private wake: (() => void) | undefined;
  /** The message being handled; close() lets it finish and be acknowledged first. */
  private inFlight: Promise<void> = Promise.resolve();
  private consumerTag: string | undefined;

  constructor(private readonly o: LinkOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Resolves when connected (and consuming, when asked to). */
  up(): Promise<void> {
    if (this.ch) return Promise.resolve();
    return new Promise((r) => this.upWaiters.push(r));
  }

  private async run(): Promise<void> {
    const [opts, socket] = connectOptions(this.o.broker);
    let failures = 0;
    while (!this.closed) {
      try {
        const conn = await connect(opts, socket);
        this.conn = conn;
        const lost = new Promise<void>((r) => {
          conn.on('error', (err: Error) =>
            this.o.log.warn({ err: err.message }, 'net2ban: broker connection error'),
          );
          conn.once('close', () => r());
        });
        const ch = await conn.createConfirmChannel();
        ch.on('error', (err: Error) => this.o.log.warn({ err: err.message }, 'net2ban: channel error'));
        for (const q of this.o.queues) await ch.assertQueue(q, { durable: true });
        if (this.o.consume) {
          const { queue, onMessage } = this.o.consume;
          await ch.assertQueue(queue, { durable: true });
          await ch.prefetch(1);
          const { consumerTag } = await ch.consume(queue, (msg: ConsumeMessage | null) => {
            if (!msg) return;
            this.inFlight = this.inFlight.then(async () => {
              await onMessage(msg.content).catch((err) =>
                this.o.log.error({ err: (err as Error).message }, 'net2ban: message handler failed'),
              );
              try {
                ch.ack(msg);
              } catch {
                // The channel went away: the broker redelivers the message on the next connect.
              }
            });
          });
          this.consumerTag = consumerTag;
        }
        this.ch = ch;
        failures = 0;
        this.o.log.info(
          { host: this.o.broker.host, vhost: this.o.broker.vhost },
          'net2ban: connected to the broker',
        );
        for (const w of this.upWaiters.splice(0)) w();
        await lost;
        this.ch = undefined;
        this.conn = undefined;
        if (!this.closed) this.o.log.warn('net2ban: broker connection lost; reconnecting');
      } catch (err) {
        this.ch = undefined;
        failures++;
        if (!this.closed) {
          this.o.log.warn(
            { err: (err as Error).message, attempt: failures },
            'net2ban: cannot reach the broker; retrying',
          );
        }
      }
      if (this.closed) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(
          resolve,
          Math.min(this.o.maxBackoffMs ?? 10_000, 200 * 2 ** Math.min(failures, 8)),
        );
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Publishes one persistent message to a durable queue and waits for the broker's confirm. */
  async publish(queue: string, body: Buffer): Promise<void> {
    await this.up();
    const ch = this.ch!;
    await new Promise<void>((resolve, reject) => {
      ch.sendToQueue(queue, body, { persistent: true }, (err) =>
        err
          ? reject(new RampartError('E_BUS', `broker refused the message for ${queue}`, { cause: err }))
          : resolve(),
      );
    });
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    // Stop deliveries, let the message in hand finish and be acknowledged, then hang up: a
    // message is neither lost nor run twice because we were asked to stop.
    if (this.ch && this.consumerTag) await this.ch.cancel(this.consumerTag).catch(() => {});
    await this.inFlight;
    // Channel first: its close waits for the broker's answer, so the last ack is on the wire
    // (closing the connection straight away could overtake it and the broker would redeliver).
    await this.ch?.close().catch(() => {});
    await this.conn?.close().catch(() => {});
    await this.loop;
  }
}

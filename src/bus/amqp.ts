import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { redactUrl as redact } from '../core/redact-url.js';
import { filterToBindingKey, subjectToTopic, topicToSubject } from './broker-subjects.js';
import { isValidFilter, topicMatches } from './topic-match.js';
import { type MessageHandler, runHandler, type Transport } from './transport.js';

export interface AmqpTransportOptions {
  /** `amqp://user:password@host:5672/vhost` (or amqps://), one or several nodes of a cluster. */
  urls: string[];
  /**
   * The name of this node's durable queue: an agent that comes back under the same id finds
   * what arrived meanwhile. Hubs share one id, so they share the reports queue (competing consumers).
   */
  clientId: string;
  /** Topic exchange carrying every topic, default `rampart`. */
  exchange?: string;
  /** `quorum` (replicated, RabbitMQ 3.8+; default) or `classic`. */
  queueType?: 'quorum' | 'classic';
  /** A server-named exclusive queue instead of the durable one (nothing kept while away). */
  clean?: boolean;
  /** PEM contents, for amqps://. */
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** Unacknowledged deliveries in flight, default 1000. */
  prefetch?: number;
  /** `connect()` rejects after this long without a connection (retries go on), default 30 s. */
  connectTimeoutMs?: number;
  /** A publish without a confirm after this long fails, default 10 s. */
  publishTimeoutMs?: number;
  /**
   * Declaring and consuming the queue must succeed within this long, default 15 s; otherwise the
   * connection is dropped and dialled again. Two such failures in a row and the durable queue is
   * deleted and declared anew (a quorum queue left without a leader by a broker crash; ADR 0062).
   */
  queueTimeoutMs?: number;
  minReconnectMs?: number;
  maxReconnectMs?: number;
  logger?: Logger;
}

interface Live {
  conn: ChannelModel;
  pub: ConfirmChannel;
  sub: Channel;
  /** The queue consumed on this connection, once something is subscribed. */
  queue?: string;
  /** Declaring and consuming it, once (subscriptions made at the same time share it). */
  queueReady?: Promise<void>;
}

/**
 * Transport over AMQP 0-9-1 (RabbitMQ) with amqplib: one durable topic exchange, one durable
 * queue per node bound to the filters it subscribes to, persistent messages with publisher
 * confirms, and manual acks sent only once the handler's promise resolved (for an agent: after
 * the firewall commit); a failed handler is requeued. Reconnects with backoff over `urls`.
 */
export class AmqpTransport implements Transport {
  readonly name = 'amqp';
  private live: Live | undefined;
  private readonly subs: { filter: string; handler: MessageHandler }[] = [];
  private readonly statusListeners: ((s: 'up' | 'down') => void)[] = [];
  private readonly upWaiters: (() => void)[] = [];
  private started = false;
  private closed = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;
  /** Dials in a row whose queue did not accept a consumer in time (reset by one that did). */
  private stuckQueue = 0;
  private readonly log: Logger;
  private readonly exchange: string;

  constructor(private readonly o: AmqpTransportOptions) {
    this.log = o.logger ?? silentLogger();
    this.exchange = o.exchange ?? 'rampart';
  }

  get connected(): boolean {
    return this.live !== undefined;
  }

  async connect(): Promise<void> {
    if (this.closed) throw new RampartError('E_BUS', 'transport is closed');
    if (this.live) return;
    if (!this.started) {
      this.started = true;
      void this.dial();
    }
    const timeoutMs = this.o.connectTimeoutMs ?? 30_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.upWaiters.indexOf(ok);
        if (i >= 0) this.upWaiters.splice(i, 1);
        const why = this.lastError ? `: ${this.lastError.message}` : '';
        const auth = /ACCESS_REFUSED|403/.test(this.lastError?.message ?? '');
        reject(
          new RampartError(
            auth ? 'E_AUTH' : 'E_BUS',
            `cannot reach AMQP broker ${this.o.urls.map(redact).join(',')} within ${timeoutMs} ms${why}`,
          ),
        );
      }, timeoutMs);
      const ok = () => {
        clearTimeout(timer);
        if (this.closed) reject(new RampartError('E_BUS', 'transport closed while connecting'));
        else resolve();
      };
      this.upWaiters.push(ok);
    });
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    const live = this.live;
    if (!live) throw new RampartError('E_BUS', `not connected to AMQP broker (${topic})`);
    const timeoutMs = this.o.publishTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new RampartError('E_BUS', `publish on ${topic} failed: no confirm within ${timeoutMs} ms`)),
        timeoutMs,
      );
      try {
        live.pub.publish(
          this.exchange,
          topicToSubject(topic),
          payload,
          { persistent: true, contentType: 'application/octet-stream' },
          (err) => {
            clearTimeout(timer);
            if (err)
              reject(
                new RampartError('E_BUS', `publish on ${topic} was refused by the broker`, { cause: err }),
              );
            else resolve();
          },
        );
      } catch (err) {
        clearTimeout(timer);
        reject(
          new RampartError('E_BUS', `publish on ${topic} failed: ${(err as Error).message}`, { cause: err }),
        );
      }
    });
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    if (!isValidFilter(filter))
      throw new RampartError('E_BUS', `invalid topic filter ${JSON.stringify(filter)}`);
    this.subs.push({ filter, handler });
    // While down, the queue is bound at the next connect.
    const live = this.live;
    if (!live) return;
    try {
      await this.ensureQueue(live);
      await live.sub.bindQueue(live.queue!, this.exchange, filterToBindingKey(filter));
    } catch (err) {
      throw new RampartError('E_BUS', `subscribe to ${filter} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  onStatus(listener: (status: 'up' | 'down') => void): void {
    this.statusListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    const live = this.live;
    this.setDown();
    for (const w of this.upWaiters.splice(0)) w();
    if (live) await live.conn.close().catch(() => undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Deletes this node's durable queue (decommissioning, tests). */
  async deleteQueue(): Promise<void> {
    await this.live?.sub.deleteQueue(this.o.clientId).catch(() => undefined);
  }

  private async dial(): Promise<void> {
    if (this.closed) return;
    const url = this.o.urls[this.attempt % this.o.urls.length]!;
    const { connect } = await import('amqplib');
    let conn: ChannelModel | undefined;
    try {
      conn = await connect(withHeartbeat(url), {
        ...(this.o.tls ?? {}),
        ...(this.o.tls?.ca ? { ca: [this.o.tls.ca] } : {}),
        timeout: Math.min(this.o.connectTimeoutMs ?? 30_000, 10_000),
        noDelay: true,
      });
      const c = conn;
      c.on('error', (err: Error) => this.log.warn({ err: err.message }, 'amqp connection error'));
      c.on('close', () => this.lost(c));
      const pub = await c.createConfirmChannel();
      const sub = await c.createChannel();
      // A channel error (a refused bind, a deleted queue) closes that channel: start over.
      for (const ch of [pub, sub]) {
        ch.on('error', (err: Error) => this.log.warn({ err: err.message }, 'amqp channel error'));
        ch.on('close', () => {
          if (this.live?.conn === c) void c.close().catch(() => undefined);
        });
      }
      await pub.assertExchange(this.exchange, 'topic', { durable: true });
      await sub.prefetch(this.o.prefetch ?? 1000);
      const live: Live = { conn: c, pub, sub };
      if (this.subs.length > 0) {
        await this.ensureQueue(live);
        for (const s of this.subs)
          await sub.bindQueue(live.queue!, this.exchange, filterToBindingKey(s.filter));
      }
      if (this.closed) {
        await c.close().catch(() => undefined);
        return;
      }
      this.attempt = 0;
      this.lastError = undefined;
      this.live = live;
      this.setUp();
    } catch (err) {
      this.lastError = err as Error;
      this.log.warn({ err: (err as Error).message, url: redact(url) }, 'amqp connect failed');
      await conn?.close().catch(() => undefined);
      this.scheduleDial();
    }
  }

  private lost(conn: ChannelModel): void {
    if (this.live?.conn !== conn) return;
    this.live = undefined;
    this.setDown();
    this.scheduleDial();
  }

  private scheduleDial(): void {
    if (this.closed || this.retryTimer) return;
    const min = this.o.minReconnectMs ?? 500;
    const max = this.o.maxReconnectMs ?? 30_000;
    // Jitter so a fleet does not reconnect in lockstep after a broker restart.
    const delay = Math.round(
      Math.min(max, min * 2 ** Math.min(this.attempt, 16)) * (0.75 + Math.random() * 0.5),
    );
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.dial();
    }, delay);
    this.retryTimer.unref?.();
  }

  private ensureQueue(live: Live): Promise<void> {
    live.queueReady ??= this.setUpQueue(live);
    return live.queueReady;
  }

  private async setUpQueue(live: Live): Promise<void> {
    const timeoutMs = this.o.queueTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.stuckQueue++;
        // The channel's call stays pending with the broker: only a new connection starts afresh.
        void live.conn.close().catch(() => undefined);
        reject(new Error(`queue ${this.o.clientId} accepted no consumer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([timedOut, this.declareAndConsume(live)]);
      this.stuckQueue = 0;
    } finally {
      clearTimeout(timer);
    }
  }

  private async declareAndConsume(live: Live): Promise<void> {
    if (!this.o.clean && this.stuckQueue >= 2) {
      // RabbitMQ can bring a quorum queue back from a crash without a leader, and it then never
      // serves again unless an operator steps in (ADR 0062). Deleting it loses what it held: an
      // agent's decisions come back from the log by catch-up; a hub's unread reports are lost.
      this.log.error(
        { queue: this.o.clientId, failures: this.stuckQueue },
        'amqp queue accepts no consumer; deleting it and declaring it again',
      );
      await live.sub.deleteQueue(this.o.clientId);
    }
    const q = this.o.clean
      ? await live.sub.assertQueue('', { exclusive: true, autoDelete: true, durable: false })
      : await live.sub.assertQueue(this.o.clientId, {
          durable: true,
          arguments: { 'x-queue-type': this.o.queueType ?? 'quorum' },
        });
    await live.sub.consume(q.queue, (m) => this.deliver(live, m), { noAck: false });
    live.queue = q.queue;
  }

  private deliver(live: Live, m: ConsumeMessage | null): void {
    if (!m) return; // consumer cancelled by the broker (queue deleted): the channel close reconnects
    const topic = subjectToTopic(m.fields.routingKey);
    const runs = this.subs
      .filter((s) => topicMatches(s.filter, topic))
      .map((s) => runHandler(s.handler, topic, m.content, this.log));
    // Acks belong to the channel that delivered; after a reconnect or close the broker redelivers
    // anyway. A channel closing under a late handler throws synchronously: that must not become
    // an unhandled rejection (it ended the process of an agent or hub closing mid-delivery).
    // Not `this.live === live`: a backlog is delivered while the dial still binds, before `live`
    // is set, and those acks were dropped; the messages stayed unacknowledged until the next
    // reconnect, and once `prefetch` of them were held, the queue delivered nothing more.
    const settle = (fn: () => void) => {
      if (this.closed) return;
      try {
        fn();
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'amqp: ack on a closing channel dropped');
      }
    };
    void Promise.all(runs).then((ok) => {
      if (ok.every(Boolean)) settle(() => live.sub.ack(m));
      // A failed handler (firewall commit failed): requeue after a pause, not in a tight loop.
      else setTimeout(() => settle(() => live.sub.nack(m, false, true)), 1_000).unref();
    });
  }

  private setUp(): void {
    for (const w of this.upWaiters.splice(0)) w();
    this.emit('up');
  }

  private setDown(): void {
    this.emit('down');
  }

  private emitted: 'up' | 'down' = 'down';
  private emit(s: 'up' | 'down'): void {
    if (this.emitted === s) return;
    this.emitted = s;
    for (const l of this.statusListeners) {
      try {
        l(s);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'status listener threw');
      }
    }
  }
}

/** Heartbeats detect a dead broker in seconds (AMQP's default is the server's, often 60 s). */
function withHeartbeat(url: string): string {
  try {
    const u = new URL(url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '10');
    return u.toString();
  } catch {
    return url;
  }
}

import { createHash } from 'node:crypto';
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Authenticator, NatsConnection, Subscription } from '@nats-io/transport-node';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { filterToSubjects, subjectToTopic, topicToSubject } from './broker-subjects.js';
import { PullWatch } from './nats-pull-watch.js';
import { isValidFilter } from './topic-match.js';
import { type MessageHandler, runHandler, type Transport } from './transport.js';

type NatsLibs = typeof import('@nats-io/transport-node') & typeof import('@nats-io/jetstream');
let libs: NatsLibs | undefined;

/**
 * The NATS client loaded on first connect: a process that builds this transport without using it
 * (an agent on MQTT) never pays its memory (issue 10: idle agent RSS).
 */
async function loadLibs(): Promise<NatsLibs> {
  if (!libs) {
    const [transport, js] = await Promise.all([
      import('@nats-io/transport-node'),
      import('@nats-io/jetstream'),
    ]);
    libs = { ...transport, ...js };
  }
  return libs;
}

/** The client, once `start()` loaded it (everything below runs after it). */
function nats(): NatsLibs {
  if (!libs) throw new RampartError('E_BUS', 'nats: client library used before connect');
  return libs;
}

/** A JetStream stream the transport keeps for a set of topics. */
export interface NatsStreamSpec {
  name: string;
  /** MQTT-style filters (`rampart/f/reports/+`) of the topics stored in it. */
  topics: string[];
  /**
   * `limits`: every durable consumer sees every message (decisions, one consumer per agent);
   * `workqueue`: each message goes to one consumer and is removed on ack (reports, shared by hubs).
   */
  retention: 'limits' | 'workqueue';
  /** How long messages are kept (limits streams), default 7 days. */
  maxAgeMs?: number;
}

export interface NatsTransportOptions {
  /** `nats://host:4222` or `tls://host:4222`, one or several (a cluster). */
  servers: string[];
  /**
   * Durable consumer names derive from it: an agent that comes back under the same id resumes
   * where it acknowledged. Hubs share one id, so they share the reports consumer (a work queue).
   */
  clientId: string;
  user?: string;
  pass?: string;
  /** Contents of a .creds file, or an nkey seed. */
  creds?: Uint8Array;
  nkeySeed?: Uint8Array;
  /** PEM contents. */
  tls?: { ca?: string; cert?: string; key?: string };
  streams: NatsStreamSpec[];
  /** Stream replicas (1, or 3/5 on a cluster), default 1. */
  replicas?: number;
  /** Ephemeral consumers instead of durable ones (nothing kept while away). */
  clean?: boolean;
  /** `connect()` rejects after this long without a connection (retries go on), default 30 s. */
  connectTimeoutMs?: number;
  /** A publish without a stream ack after this long fails, default 10 s. */
  publishTimeoutMs?: number;
  /** Learn the other cluster members from the server (default true; false pins `servers`). */
  discover?: boolean;
  /** Reconnect wait between attempts, default 500 ms. */
  reconnectMs?: number;
  /** A durable consumer unused this long is removed by the server (an agent gone for good). Default 14 d. */
  inactiveMs?: number;
  /**
   * Idle heartbeat of each pull consumer, default 1 s; 3 missed ones set the consumer up again
   * (a dead server is noticed by these, not by a pull's expiry). Every idle consumer costs the
   * server a heartbeat per beat and a pull per expiry: ~1.03 messages/s each at the defaults,
   * which a fleet of thousands of agents feels; a longer beat trades that for slower noticing of
   * a dead server.
   */
  heartbeatMs?: number;
  /**
   * How long each pull stays open, default 30 beats. Every expiry on nats-server before 2.9.16 is
   * a few milliseconds in which a message can meet the expiring pull and wait for the pull watch
   * (ADR 0069, ADR 0073): fewer expiries, fewer such waits.
   */
  pullExpiresMs?: number;
  logger?: Logger;
}

interface Sub {
  subject: string;
  handlers: MessageHandler[];
  /** Where it is consumed once connected: a stream's durable consumer, or core NATS. */
  stream?: NatsStreamSpec;
  running?: ConsumerMessages | Subscription;
}

const DAY = 86_400_000;

/**
 * Transport over NATS JetStream. Topics covered by a configured stream are published with a
 * stream acknowledgement (stored, replicated) and consumed through durable pull consumers with
 * explicit acks, sent only when the handler's promise resolved (for agents: once the firewall
 * committed). An agent that was down resumes from its consumer; topics outside every stream
 * use core NATS (no persistence).
 */
export class NatsTransport implements Transport {
  readonly name = 'nats';
  private nc: NatsConnection | undefined;
  private js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;
  private readonly subs = new Map<string, Sub>();
  private readonly statusListeners: ((s: 'up' | 'down') => void)[] = [];
  private up = false;
  private closed = false;
  private starting: Promise<NatsConnection> | undefined;
  /** Whether the warning that a pull ended without its 408 was logged (ADR 0069). */
  private toldOldServer = false;
  private readonly log: Logger;
  private readonly streamSubjects: Map<NatsStreamSpec, string[]>;

  constructor(private readonly o: NatsTransportOptions) {
    this.log = o.logger ?? silentLogger();
    this.streamSubjects = new Map(o.streams.map((s) => [s, s.topics.flatMap(filterToSubjects)]));
  }

  get connected(): boolean {
    return this.up;
  }

  async connect(): Promise<void> {
    if (this.closed) throw new RampartError('E_BUS', 'transport is closed');
    if (this.up) return;
    this.starting ??= this.start();
    const timeoutMs = this.o.connectTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.starting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RampartError(
                  'E_BUS',
                  `cannot reach NATS ${this.o.servers.join(',')} within ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    const nc = this.nc;
    if (!nc || !this.up || !this.js) throw new RampartError('E_BUS', `not connected to NATS (${topic})`);
    const subject = topicToSubject(topic);
    try {
      if (this.streamFor(subject)) {
        // Same bytes, same id: a publish retried after a lost ack is stored once (duplicate window).
        const msgID = createHash('sha256').update(payload).digest('hex').slice(0, 32);
        await this.js.publish(subject, payload, { msgID, timeout: this.o.publishTimeoutMs ?? 10_000 });
      } else {
        nc.publish(subject, payload);
        await nc.flush();
      }
    } catch (err) {
      throw new RampartError('E_BUS', `publish on ${topic} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    if (!isValidFilter(filter))
      throw new RampartError('E_BUS', `invalid topic filter ${JSON.stringify(filter)}`);
    for (const subject of filterToSubjects(filter)) {
      const existing = this.subs.get(subject);
      if (existing) {
        existing.handlers.push(handler);
        continue;
      }
      const sub: Sub = { subject, handlers: [handler] };
      const stream = this.streamFor(subject, true);
      if (stream) sub.stream = stream;
      this.subs.set(subject, sub);
      // While down, consumption starts at the next connect.
      if (this.up) {
        await this.startSub(sub).catch((err: unknown) => {
          this.subs.delete(subject);
          throw new RampartError('E_BUS', `subscribe to ${filter} failed: ${(err as Error).message}`, {
            cause: err,
          });
        });
      }
    }
  }

  onStatus(listener: (status: 'up' | 'down') => void): void {
    this.statusListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const nc = this.nc ?? (await this.starting?.catch(() => undefined));
    for (const s of this.subs.values()) stopRunning(s);
    if (nc) {
      // Drain delivers what is in flight and flushes acks; close when the server is gone.
      await Promise.race([nc.drain(), new Promise((r) => setTimeout(r, 2_000).unref())]).catch(
        () => undefined,
      );
      await nc.close().catch(() => undefined);
    }
    this.setStatus('down');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Deletes the streams this transport declared (tests, decommissioning). */
  async deleteStreams(): Promise<void> {
    if (!this.jsm) return;
    for (const s of this.o.streams) await this.jsm.streams.delete(s.name).catch(() => undefined);
  }

  private async start(): Promise<NatsConnection> {
    const { connect, credsAuthenticator, nkeyAuthenticator, jetstream, jetstreamManager } = await loadLibs();
    const o = this.o;
    const authenticator: Authenticator | undefined = o.creds
      ? credsAuthenticator(o.creds)
      : o.nkeySeed
        ? nkeyAuthenticator(o.nkeySeed)
        : undefined;
    const wantsTls = o.tls !== undefined || o.servers.some((s) => s.startsWith('tls:'));
    const nc = await connect({
      servers: o.servers,
      name: o.clientId,
      ...(o.user !== undefined ? { user: o.user, pass: o.pass ?? '' } : {}),
      ...(authenticator ? { authenticator } : {}),
      ...(wantsTls ? { tls: o.tls ?? {} } : {}),
      // Keep trying through a cluster restart; our status listeners tell the agent.
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectMs ?? 500,
      waitOnFirstConnect: true,
      ignoreClusterUpdates: o.discover === false,
      timeout: Math.min(o.connectTimeoutMs ?? 30_000, 20_000),
      pingInterval: 10_000,
      maxPingOut: 3,
    }).catch((err: unknown) => {
      const e = err as Error & { code?: string };
      const auth = /authoriz|authentic|permission/i.test(e.message);
      throw new RampartError(
        auth ? 'E_AUTH' : 'E_BUS',
        `NATS ${o.servers.join(',')} ${auth ? 'refused the credentials' : 'failed'}: ${e.message}`,
        { cause: err },
      );
    });
    if (this.closed) {
      await nc.close();
      throw new RampartError('E_BUS', 'transport closed while connecting');
    }
    this.nc = nc;
    this.js = jetstream(nc);
    // No API check here: a cluster still electing its leader would fail it; onUp retries instead.
    this.jsm = await jetstreamManager(nc, { checkAPI: false });
    void this.watchStatus(nc);
    await this.onUp();
    return nc;
  }

  /**
   * After every (re)connect: streams and consumers exist (a cluster restart may have lost them,
   * a new cluster may still be electing a leader), then up. Retries until it works or we close.
   */
  private async onUp(): Promise<void> {
    for (;;) {
      if (this.closed || !this.nc || this.nc.isClosed()) return;
      try {
        await this.ensureStreams();
        for (const s of this.subs.values()) await this.startSub(s);
        this.setStatus('up');
        return;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'nats setup after connect failed; retrying');
        await new Promise((r) => setTimeout(r, this.o.reconnectMs ?? 500));
      }
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (this.closed) return;
      if (s.type === 'disconnect') this.setStatus('down');
      else if (s.type === 'reconnect') void this.onUp();
    }
  }

  private async ensureStreams(): Promise<void> {
    const { RetentionPolicy, StorageType, nanos } = nats();
    const jsm = this.jsm!;
    for (const spec of this.o.streams) {
      const config = {
        name: spec.name,
        subjects: this.streamSubjects.get(spec)!,
        retention: spec.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: this.o.replicas ?? 1,
        max_age: nanos(spec.maxAgeMs ?? 7 * DAY),
        duplicate_window: nanos(120_000),
      };
      const info = await jsm.streams.info(spec.name).catch(() => undefined);
      if (info) continue;
      await jsm.streams.add(config).catch(async (err: unknown) => {
        // Another hub or agent created it at the same moment.
        if (!(await jsm.streams.info(spec.name).catch(() => undefined))) throw err;
      });
    }
  }

  private async startSub(sub: Sub): Promise<void> {
    const { AckPolicy, DeliverPolicy, nanos } = nats();
    const nc = this.nc!;
    stopRunning(sub);
    if (!sub.stream) {
      sub.running = nc.subscribe(sub.subject, {
        callback: (err, m) => {
          if (!err)
            for (const h of sub.handlers)
              void runHandler(h, subjectToTopic(m.subject), Buffer.from(m.data), this.log);
        },
      });
      return;
    }
    const stream = sub.stream.name;
    const durable = this.o.clean
      ? undefined
      : `${this.o.clientId.replace(/[^A-Za-z0-9_-]/g, '_')}_${createHash('sha256').update(sub.subject).digest('hex').slice(0, 12)}`;
    const jsm = this.jsm!;
    const existing = durable ? await jsm.consumers.info(stream, durable).catch(() => undefined) : undefined;
    const name =
      existing?.name ??
      (
        await jsm.consumers.add(stream, {
          ...(durable
            ? { durable_name: durable, inactive_threshold: nanos(this.o.inactiveMs ?? 14 * DAY) }
            : { inactive_threshold: nanos(60_000) }),
          filter_subject: sub.subject,
          ack_policy: AckPolicy.Explicit,
          // A new agent starts from now: its history comes from the hub's snapshot over HTTP. A
          // work queue hands out everything stored (reports waiting for the first hub).
          deliver_policy: sub.stream.retention === 'workqueue' ? DeliverPolicy.All : DeliverPolicy.New,
          ack_wait: nanos(30_000),
          max_ack_pending: 10_000,
        })
      ).name;
    const consumer = await this.js!.consumers.get(stream, name);
    // Short heartbeats: after a node dies, a pull parked on it is noticed in seconds. Long pulls:
    // each expiry is a chance for an old server to drop one unanswered (ADR 0073).
    const beat = this.o.heartbeatMs ?? 1_000;
    const expires = this.o.pullExpiresMs ?? 30 * beat;
    const messages = await consumer.consume({ max_messages: 512, expires, idle_heartbeat: beat });
    sub.running = messages;
    const watch = this.watchPulls(sub, messages, stream, expires, beat);
    // The client keeps pulling a consumer whose leader died or that a cluster restart lost, and
    // only says so here: then set the consumer up again.
    void (async () => {
      for await (const st of messages.status()) {
        watch.note(st);
        const lost =
          (st.type === 'heartbeats_missed' && st.count >= 3) ||
          ((st.type === 'consumer_not_found' || st.type === 'stream_not_found') &&
            (st as { count?: number }).count !== undefined &&
            ((st as { count?: number }).count ?? 0) >= 3) ||
          st.type === 'consumer_deleted';
        if (lost && sub.running === messages && !this.closed) {
          this.log.warn({ stream, status: st.type }, 'nats consumer lost; setting it up again');
          void this.restartSub(sub);
          return;
        }
      }
    })()
      .catch(() => undefined)
      .finally(() => watch.stop());
    void (async () => {
      for await (const m of messages) {
        const topic = subjectToTopic(m.subject);
        const data = Buffer.from(m.data);
        void Promise.all(sub.handlers.map((h) => runHandler(h, topic, data, this.log))).then((ok) => {
          // A failed handler: redeliver after a pause rather than at once in a tight loop.
          if (ok.every(Boolean)) m.ack();
          else m.nak(1_000);
        });
      }
    })().catch((err: unknown) =>
      this.log.warn({ err: (err as Error).message, stream }, 'nats consumer stopped'),
    );
  }

  /**
   * Pulls again when the server dropped the consumer's last pull without a 408 (nats-server before
   * 2.9.16 does when a message meets an expiring pull; ADR 0069), instead of after two missed
   * heartbeats.
   */
  private watchPulls(
    sub: Sub,
    messages: ConsumerMessages,
    stream: string,
    expiresMs: number,
    beatMs: number,
  ): PullWatch {
    // consume()'s own recovery after missed heartbeats: check the consumer, forget what it thought
    // was pending, pull again. Not on the ConsumerMessages interface; nats.js 3.x has it.
    const reset = (messages as { resetPending?: () => Promise<boolean> }).resetPending;
    return new PullWatch({
      expiresMs,
      graceMs: beatMs / 5,
      flush: () => (this.nc && this.up ? this.nc.flush() : Promise.reject(new Error('down'))),
      repull: () => {
        if (sub.running !== messages || this.closed) return;
        // Once per transport at warn so an operator learns the server is old; then at debug.
        const level = this.toldOldServer ? 'debug' : 'warn';
        this.toldOldServer = true;
        this.log[level](
          { stream },
          'nats pull ended without a 408 from the server (nats-server before 2.9.16); pulling again',
        );
        if (reset) void reset.call(messages).catch(() => undefined);
        else void this.restartSub(sub);
      },
    });
  }

  private async restartSub(sub: Sub): Promise<void> {
    stopRunning(sub);
    while (!this.closed && this.up) {
      try {
        await this.ensureStreams();
        await this.startSub(sub);
        return;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'nats consumer setup failed; retrying');
        await new Promise((r) => setTimeout(r, this.o.reconnectMs ?? 500));
      }
    }
  }

  /** The stream storing `subject` (for a filter: covering every subject it matches). */
  private streamFor(subject: string, isFilter = false): NatsStreamSpec | undefined {
    for (const [spec, subjects] of this.streamSubjects) {
      if (subjects.some((p) => covers(p, subject, isFilter))) return spec;
    }
    return undefined;
  }

  private setStatus(s: 'up' | 'down'): void {
    if (s === 'up') {
      if (this.up) return;
      this.up = true;
    } else {
      if (!this.up) return;
      this.up = false;
    }
    for (const l of this.statusListeners) {
      try {
        l(s);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'status listener threw');
      }
    }
  }
}

function stopRunning(sub: Sub): void {
  const r = sub.running;
  sub.running = undefined;
  if (!r) return;
  if ('unsubscribe' in r) r.unsubscribe();
  else r.stop();
}

/** Whether NATS subject pattern `pattern` matches every subject `subject` (a subject or a filter) can. */
function covers(pattern: string, subject: string, isFilter: boolean): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i < s.length;
    if (i >= s.length) return false;
    if (isFilter && s[i] === '>') return false;
    if (p[i] === '*') continue;
    if (p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

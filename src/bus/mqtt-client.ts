import type { IClientOptions, MqttClient } from 'mqtt';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { redactUrl as redact } from '../core/redact-url.js';
import { holdOptimizingCompiler } from '../core/startup-tiering.js';
import { loadMqtt } from './mqtt-load.js';
import { clientWithoutConnect } from './mqtt-stream.js';
import { isValidFilter, topicMatches } from './topic-match.js';
import { type MessageHandler, runHandler, type Transport } from './transport.js';

export interface MqttClientOptions {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string;
  /** More brokers of the same cluster, tried in turn after `url` on reconnect. */
  fallbackUrls?: string[];
  /**
   * Stable per node (e.g. `rampart-default-web1`): with `clean: false` the broker keeps the
   * session under this id, and QoS 1 messages published while we were away are delivered when we
   * come back.
   */
  clientId: string;
  username?: string;
  password?: string;
  /** Default false (persistent session). */
  clean?: boolean;
  /** PEM contents (not paths): CA bundle, client certificate and key. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean };
  /**
   * First reconnect delay; doubles up to `maxReconnectMs` (default 250 ms → 5 s, with jitter): a
   * hub restart must not leave agents waiting half a minute for their next attempt.
   */
  minReconnectMs?: number;
  maxReconnectMs?: number;
  /** `connect()` rejects after this long without a connection (retries go on), default 30 s. */
  connectTimeoutMs?: number;
  keepaliveSeconds?: number;
  /** A publish without PUBACK after this long fails and is not resent, default 10 s. */
  publishTimeoutMs?: number;
  /** Largest packet published, default 1 MiB (the embedded broker's default limit). */
  maxPacketBytes?: number;
  /** Messages held for filters not subscribed yet (a resumed session delivers before subscribe). */
  maxEarlyMessages?: number;
  /** Last will the broker publishes when the connection drops without a DISCONNECT. */
  will?: { topic: string; payload: Buffer | string; qos: 0 | 1 | 2; retain: boolean };
  /** QoS asked for in SUBSCRIBE, default 1 (vallumd's topics are subscribed at 2). */
  subscribeQos?: 0 | 1 | 2;
  /**
   * These filters are subscribed as the shared subscription `$share/<group>/<filter>` (MQTT 5
   * 4.8.2; Mosquitto 2 takes it from 3.1.1 clients too): the broker hands each message to one
   * member of the group (the hubs of a fleet) instead of to all.
   */
  share?: { group: string; filters: string[] };
  logger?: Logger;
}

type Handler = MessageHandler;

const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;

/**
 * A connection closed sooner than this after the broker accepted it is short-lived; this many in
 * a row is what two clients under one client id look like (MQTT 3.1.1 3.1.4-2: the broker closes
 * the older connection when the same id connects again, and each side reconnects at once).
 */
const SHORT_LIVED_MS = 10_000;
const SHORT_LIVED_ALARM = 3;

/** Certificate problems: retrying will not fix them, so connect() reports them at once. */
const TLS_FAILURES =
  /^(ERR_TLS_|ERR_SSL_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_|CERT_)/;

/**
 * Transport over an MQTT 3.1.1 broker (Mosquitto, EMQX, the hub's embedded broker) with mqtt.js:
 * persistent session, QoS 1 both ways, reconnect with exponential backoff.
 */
export class MqttClientTransport implements Transport {
  readonly name = 'mqtt';
  private client: MqttClient | undefined;
  private readonly subs: { filter: string; handler: Handler }[] = [];
  private readonly statusListeners: ((s: 'up' | 'down') => void)[] = [];
  private early: { topic: string; payload: Buffer }[] = [];
  private up = false;
  private closed = false;
  private attempt = 0;
  /** When the current connection was accepted (0 while down), and short-lived ones in a row. */
  private connectedAt = 0;
  private shortLived = 0;
  private warnedClientId = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly opts: MqttClientOptions) {
    this.log = opts.logger ?? silentLogger();
  }

  /** Whether the broker connection is up right now. */
  get connected(): boolean {
    return this.up;
  }

  /**
   * Resolves on the first connection. Rejects at once on refused credentials (E_AUTH) or a TLS
   * failure, and after `connectTimeoutMs` otherwise (E_BUS); retries go on in the background either
   * way and `onStatus('up')` reports a later success. `close()` stops them.
   */
  async connect(): Promise<void> {
    if (this.closed) throw new RampartError('E_BUS', 'transport is closed');
    if (this.up) return;
    // Concurrent first calls share one start: two mqtt.js clients with one id would evict each other.
    this.starting ??= this.start();
    await this.starting;
    const client = this.client!;
    if (client.connected) return;
    await new Promise<void>((resolve, reject) => {
      const timeoutMs = this.opts.connectTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        done();
        reject(
          new RampartError(
            'E_BUS',
            `cannot reach MQTT broker ${redact(this.opts.url)} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const onConnect = () => {
        done();
        resolve();
      };
      const onError = (err: Error & { code?: number | string }) => {
        // CONNACK 4/5: a credential problem that retrying will not fix by itself.
        if (err.code === 4 || err.code === 5) {
          done();
          reject(
            new RampartError(
              'E_AUTH',
              `MQTT broker ${redact(this.opts.url)} refused the credentials: ${err.message}`,
              {
                cause: err,
              },
            ),
          );
        } else if (typeof err.code === 'string' && TLS_FAILURES.test(err.code)) {
          done();
          reject(
            new RampartError('E_BUS', `TLS to MQTT broker ${redact(this.opts.url)} failed: ${err.message}`, {
              cause: err,
            }),
          );
        }
      };
      const onEnd = () => {
        done();
        reject(new RampartError('E_BUS', 'transport closed while connecting'));
      };
      const done = () => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('end', onEnd);
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('end', onEnd);
    });
  }

  /** `retain`: the broker keeps the message for later subscribers (hub presence, mqtt-hub-group.ts). */
  async publish(topic: string, payload: Buffer, opts: { retain?: boolean } = {}): Promise<void> {
    const max = this.opts.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    // Checked here because a broker that drops an oversized packet drops the connection, and
    // mqtt.js would resend the same packet after every reconnect.
    if (payload.length + Buffer.byteLength(topic) + 16 > max) {
      throw new RampartError(
        'E_BUS',
        `message of ${payload.length} bytes on ${topic} exceeds the ${max}-byte packet limit`,
      );
    }
    const client = this.client;
    // Refuse at once while down rather than queue: the caller (the agent's outbox) keeps the
    // message durably and chooses another path, which an in-memory queue here could not.
    if (!client || !this.up)
      throw new RampartError('E_BUS', `not connected to MQTT broker ${redact(this.opts.url)}`);
    const timeoutMs = this.opts.publishTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      let timedOut = false;
      const cb = (err?: Error) => {
        clearTimeout(timer);
        if (!err) return resolve();
        const why = timedOut
          ? `no PUBACK within ${timeoutMs} ms (dropped from the resend queue)`
          : err.message;
        reject(new RampartError('E_BUS', `publish on ${topic} failed: ${why}`, { cause: err }));
      };
      // A broker that refuses a publish closes the connection (MQTT 3.1.1 3.3.5) and mqtt.js would
      // resend it after every reconnect: after the timeout, take it out of the resend queue.
      // The message id is known once mqtt.js has queued the packet (synchronously unless it is
      // replaying its store); after a reconnect it wraps `cb`, so look the id up now.
      // Right after publish() the id is the last one allocated; the scan is only for the rare
      // timeout after a reconnect (a scan per publish made a burst of N publishes cost N²).
      const idOf = () => {
        const last = client.getLastMessageId();
        if (client.outgoing[last]?.cb === cb) return String(last);
        return Object.entries(client.outgoing).find(([, o]) => o.cb === cb)?.[0];
      };
      let id: string | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        id ??= idOf();
        if (id !== undefined && client.outgoing[Number(id)]) client.removeOutgoingMessage(Number(id));
        else cb(new Error('timeout'));
      }, timeoutMs);
      client.publish(topic, payload, { qos: 1, retain: opts.retain === true }, cb);
      id = idOf();
    });
  }

  async subscribe(filter: string, handler: Handler): Promise<void> {
    if (!isValidFilter(filter))
      throw new RampartError('E_BUS', `invalid topic filter ${JSON.stringify(filter)}`);
    const sub = { filter, handler };
    this.subs.push(sub);
    // Deliver what a resumed session sent before this handler existed.
    const held = this.early;
    this.early = [];
    for (const m of held) {
      if (topicMatches(filter, m.topic)) this.dispatchTo(handler, m.topic, m.payload);
      else this.early.push(m);
    }
    // While down, the filter is sent at the next connect.
    if (!this.client || !this.up) return;
    try {
      await this.brokerSubscribe(this.client, [filter]);
    } catch (err) {
      this.subs.splice(this.subs.indexOf(sub), 1);
      throw err;
    }
  }

  onStatus(listener: (status: 'up' | 'down') => void): void {
    this.statusListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.starting?.catch(() => undefined);
    const client = this.client;
    if (!client) return;
    // A graceful DISCONNECT keeps the persistent session on the broker (unlike a dropped socket, it
    // also suppresses a last will); force when nothing answers.
    await Promise.race([
      client.endAsync(false),
      new Promise<void>((r) => setTimeout(r, 2_000).unref()).then(() => client.endAsync(true)),
    ]).catch(() => undefined);
    this.setStatus('down');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async start(): Promise<void> {
    // Loading mqtt.js (≈ 100 CommonJS modules) and its first connection run without TurboFan
    // (core/startup-tiering.ts): the module loader's functions are hot by then, and the first
    // tiering check after a release would optimise them. Released at the first connect or close,
    // before the agent's catch-up can bring real work, and after 2 s at the latest.
    const release = holdOptimizingCompiler();
    let mqtt: typeof import('mqtt');
    try {
      // Loaded after a turn as the import was: a close() in the same turn as the first
      // connect() still finds no client to end.
      await Promise.resolve();
      mqtt = loadMqtt();
    } catch (err) {
      release();
      throw err;
    }
    if (this.closed) {
      release();
      throw new RampartError('E_BUS', 'transport closed while connecting');
    }
    const o = this.opts;
    const options: IClientOptions = {
      clientId: o.clientId,
      clean: o.clean ?? false,
      protocolVersion: 4,
      // Reconnects are ours (exponential backoff); mqtt.js only retries at a fixed period.
      reconnectPeriod: 0,
      connectTimeout: Math.min(o.connectTimeoutMs ?? 30_000, 30_000),
      keepalive: o.keepaliveSeconds ?? 30,
      resubscribe: false,
      // mqtt-packet's default pre-builds a Buffer for each of the 65,536 two-byte numbers on the
      // first write: ≈ 8 MB held for the life of the process, a large part of an idle agent.
      writeCache: false,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.will ? { will: { ...o.will, payload: Buffer.from(o.will.payload) } } : {}),
      ...(o.tls ?? {}),
    };
    if (o.tls?.rejectUnauthorized === undefined && o.tls) options.rejectUnauthorized = true;
    if (o.fallbackUrls?.length) {
      // mqtt.js moves to the next entry after each failed connection.
      options.servers = [o.url, ...o.fallbackUrls].map((u) => {
        const p = new URL(u);
        return {
          host: p.hostname,
          port: Number(p.port) || (p.protocol === 'mqtts:' ? 8883 : 1883),
          protocol: p.protocol === 'mqtts:' ? 'mqtts' : 'mqtt',
        };
      });
    }
    let client: MqttClient;
    try {
      client =
        clientWithoutConnect(mqtt.MqttClient, [o.url, ...(o.fallbackUrls ?? [])], options) ??
        mqtt.connect(o.url, options);
    } catch (err) {
      release();
      throw new RampartError('E_BUS', `invalid MQTT broker URL ${redact(o.url)}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.client = client;
    client.once('connect', release);
    client.once('close', release);
    // A broker that drops packets holds the first attempt for up to connectTimeout: not that long.
    setTimeout(release, 2_000).unref();
    client.on('connect', () => {
      this.attempt = 0;
      this.connectedAt = Date.now();
      // mqtt.js's own streams (a URL with credentials goes through its connect()) keep Nagle on;
      // ours turn it off at creation (mqtt-stream.ts).
      (client.stream as { setNoDelay?: (on: boolean) => unknown } | undefined)?.setNoDelay?.(true);
      // Re-subscribing is harmless with a resumed session (MQTT 3.1.1 3.8.4: the subscription is
      // replaced without interrupting the flow) and needed without one, or for filters added
      // while we were down.
      if (this.subs.length > 0) {
        this.brokerSubscribe(
          client,
          this.subs.map((s) => s.filter),
        ).catch((err) => this.log.error({ err: (err as Error).message }, 'mqtt resubscribe failed'));
      }
      this.setStatus('up');
    });
    client.on('message', (topic, payload) => this.dispatch(topic, payload));
    client.on('error', (err) => this.log.warn({ err: err.message, url: redact(o.url) }, 'mqtt error'));
    client.on('close', () => {
      this.noteClose();
      this.setStatus('down');
      this.scheduleReconnect();
    });
  }

  /**
   * Counts connections the broker dropped right after accepting them. Three in a row are said
   * once, as what they most likely are (another client with our id: the broker gives the session
   * to the newest connection), and they slow the reconnects down so the two stop evicting each
   * other several times a second.
   */
  private noteClose(): void {
    if (this.connectedAt === 0) return;
    const lasted = Date.now() - this.connectedAt;
    this.connectedAt = 0;
    if (lasted >= SHORT_LIVED_MS) {
      this.shortLived = 0;
      return;
    }
    this.shortLived++;
    if (this.shortLived >= SHORT_LIVED_ALARM && !this.warnedClientId && !this.closed) {
      this.warnedClientId = true;
      this.log.error(
        { clientId: this.opts.clientId, url: redact(this.opts.url), closes: this.shortLived },
        'the MQTT broker closed the connection right after accepting it, again and again: another client is most likely connected with the same client id; give each hub and agent its own bus.clientId, or leave it unset (hubs then use their hub.id)',
      );
    }
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const min = this.opts.minReconnectMs ?? 250;
    const max = this.opts.maxReconnectMs ?? 5_000;
    const base = Math.min(max, min * 2 ** Math.min(Math.max(this.attempt, this.shortLived), 16));
    // Jitter so a fleet does not reconnect in lockstep after a broker restart.
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const c = this.client;
      if (this.closed || !c || c.connected) return;
      // Passing the current stores keeps unacknowledged QoS 1 publishes for resending.
      c.reconnect({ incomingStore: c.incomingStore, outgoingStore: c.outgoingStore });
    }, delay);
    this.retryTimer.unref?.();
  }

  private async brokerSubscribe(client: MqttClient, filters: string[]): Promise<void> {
    let grants: { topic: string; qos: number }[];
    const share = this.opts.share;
    const wire = filters.map((f) => (share?.filters.includes(f) ? `$share/${share.group}/${f}` : f));
    try {
      grants = await client.subscribeAsync(wire, { qos: this.opts.subscribeQos ?? 1 });
    } catch (err) {
      // mqtt.js rejects when a SUBACK return code is 0x80 (3.1.1 section 3.9.3: failure).
      const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
      const code = granted?.includes(128) ? 'E_AUTH' : 'E_BUS';
      const why = code === 'E_AUTH' ? 'the broker refused it' : (err as Error).message;
      throw new RampartError(code, `subscribe to ${filters.join(', ')} failed: ${why}`, { cause: err });
    }
    const refused = grants.filter((g) => g.qos === 128).map((g) => g.topic);
    if (refused.length > 0) {
      throw new RampartError('E_AUTH', `subscribe to ${refused.join(', ')} failed: the broker refused it`);
    }
  }

  private dispatch(topic: string, payload: Buffer): void {
    let matched = false;
    for (const s of this.subs) {
      if (!topicMatches(s.filter, topic)) continue;
      matched = true;
      this.dispatchTo(s.handler, topic, payload);
    }
    if (!matched) {
      if (this.early.length >= (this.opts.maxEarlyMessages ?? 10_000)) this.early.shift();
      this.early.push({ topic, payload });
    }
  }

  private dispatchTo(handler: Handler, topic: string, payload: Buffer): void {
    // A handler bug must not take the connection down or stop other handlers. mqtt.js has
    // sent PUBACK already: the agent's seq catch-up, not redelivery, covers a failed handler.
    void runHandler(handler, topic, payload, this.log);
  }

  private setStatus(s: 'up' | 'down'): void {
    if (s === 'up') {
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

import { readFileSync } from 'node:fs';
import type { Transport } from '../../bus/transport.js';
import { RampartError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { parsePayload, parseTopic } from './codec.js';
import type { VallumdOptions } from './config.js';
import { VallumdEnforcer, type VallumdOp } from './enforcer.js';

/** vallumd's last will (INTEROP.md): retained, QoS 2, the client id as payload. */
export const WILL_TOPIC = 'vallumd/will';

export interface VallumdDaemonDeps {
  logger: Logger;
  /** A ready transport (tests); default: MQTT to `host:port` with a persistent session. */
  transport?: Transport;
}

/**
 * `rampart vallumd`: subscribes to `TOPIC/#` at QoS 2 and applies `SET/add`, `SET/del` and bare
 * `SET` messages to the firewall. Unlike vallumd the session is persistent (fixed client id,
 * clean = false), so what is published while it is down is delivered when it comes back, and it
 * reconnects forever with backoff. Messages are applied strictly in arrival order.
 */
export class VallumdDaemon {
  private readonly enforcer: VallumdEnforcer;
  private transport: Transport | undefined;
  private queue: VallumdOp[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly o: VallumdOptions,
    private readonly deps: VallumdDaemonDeps,
  ) {
    this.enforcer = new VallumdEnforcer(o, deps.logger);
  }

  async start(): Promise<void> {
    const log = this.deps.logger;
    await this.enforcer.init();
    this.transport = this.deps.transport ?? (await this.mqtt());
    this.transport.onStatus((s) => {
      if (s === 'up')
        log.info({ host: this.o.host, port: this.o.port, clientId: this.o.clientId }, 'connected');
      else log.warn({ host: this.o.host, port: this.o.port }, 'disconnected; reconnecting');
    });
    for (const t of this.o.topics) {
      const filter = `${t}/#`;
      await this.transport.subscribe(filter, (topic, payload) => this.onMessage(topic, payload));
      log.info({ topic: filter }, 'subscribed');
    }
    // A broker that is down at start is not fatal: the transport keeps retrying with backoff.
    await this.transport.connect().catch((err: RampartError) => {
      log.error({ err: err.message }, 'cannot connect yet; retrying in the background');
    });
  }

  private async mqtt(): Promise<Transport> {
    const { MqttClientTransport } = await import('../../bus/mqtt-client.js');
    const o = this.o;
    let ca: Buffer | undefined;
    if (o.cafile !== undefined) {
      try {
        ca = readFileSync(o.cafile);
      } catch (err) {
        throw new RampartError('E_CONFIG', `CA file ${o.cafile} cannot be read: ${(err as Error).message}`);
      }
    }
    const host = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host;
    return new MqttClientTransport({
      url: `${ca ? 'mqtts' : 'mqtt'}://${host}:${o.port}`,
      clientId: o.clientId,
      clean: false,
      keepaliveSeconds: o.keepalive,
      subscribeQos: 2,
      will: { topic: WILL_TOPIC, payload: o.clientId, qos: 2, retain: true },
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(ca ? { tls: { ca } } : {}),
      logger: this.deps.logger,
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (!t) {
      this.deps.logger.debug({ topic }, 'ignored: the topic names no action vallumd knows');
      return;
    }
    const p = parsePayload(payload);
    if (p.kind === 'empty') return;
    if (p.kind === 'invalid') {
      this.deps.logger.error({ topic, payload: p.shown, why: p.why }, 'ipset: not a valid IP address');
      return;
    }
    this.queue.push({ action: t.action, set: t.set, target: p.target });
    this.running ??= this.drain();
  }

  private async drain(): Promise<void> {
    // Let the rest of a burst arrive so it becomes one kernel batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      try {
        await this.enforcer.apply(batch);
      } catch (err) {
        this.deps.logger.error(
          { err: (err as Error).message, messages: batch.length },
          'applying messages failed',
        );
      }
    }
    this.running = undefined;
  }

  /** Resolves when every message received so far has been applied (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport?.close();
    await this.idle();
    await this.enforcer.close();
  }
}

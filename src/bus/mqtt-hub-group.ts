import { type Logger, silentLogger } from '../core/logger.js';
import { type MqttClientOptions, MqttClientTransport } from './mqtt-client.js';
import type { MessageHandler, Transport } from './transport.js';

export interface MqttHubGroupOptions extends MqttClientOptions {
  /** Fleet name: the presence topics are `rampart/<fleet>/hubs/<client id>`. */
  fleet: string;
  /** Filters shared by the hubs (the reports): each message goes to one hub of the group. */
  shared: string[];
  /** How often the group's view is checked besides presence changes, default 10 s. */
  checkMs?: number;
}

/** What a hub's presence topic holds: retained, `1` while connected, `0` once gone (will or stop). */
const ONLINE = '1';
const GONE = '0';
/** After a session was handed back to its owner, it is not taken again this long. */
const COOLDOWN_MS = 15_000;

/**
 * The hubs of one fleet on an external MQTT broker. Each hub keeps its own persistent session
 * (`rampart-<fleet>-hub-<hub.id>`, ADR 0031) and subscribes to the reports as one shared
 * subscription, so each report is decided by one hub.
 *
 * A broker deals a shared subscription's messages round robin over its members' sessions, and
 * Mosquitto 2.0 keeps dealing to a member whose connection is gone (its persistent session queues
 * them): measured here, a killed hub of two held every second report until it came back. So each
 * hub says whether it is up on a retained presence topic (a will says it is gone), and a live hub
 * takes over the session of one that is gone: it connects under that hub's client id, receives
 * what was queued there and what keeps being dealt to it, and hands the session back when the
 * owner connects again (the broker closes the older connection; MQTT 3.1.1 3.1.4-2). Which live
 * hub adopts which is the same on every hub: the next one online after the gone one in client-id
 * order.
 */
export class MqttHubGroup implements Transport {
  readonly name = 'mqtt';
  private readonly own: MqttClientTransport;
  private readonly log: Logger;
  private readonly subs: Array<{ filter: string; handler: MessageHandler }> = [];
  /** Every hub seen on the presence topics, and whether it is online. */
  private readonly peers = new Map<string, boolean>();
  private readonly adopted = new Map<string, MqttClientTransport>();
  private readonly cooldown = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly opts: MqttHubGroupOptions) {
    this.log = opts.logger ?? silentLogger();
    this.own = new MqttClientTransport({
      ...opts,
      share: this.share(),
      will: { topic: this.presence(opts.clientId), payload: GONE, qos: 1, retain: true },
    });
    this.own.onStatus((s) => {
      if (s === 'up') void this.announce(ONLINE);
      this.check();
    });
  }

  get connected(): boolean {
    return this.own.connected;
  }

  /** The hubs whose sessions this hub is holding for them right now (tests, status). */
  get adopting(): string[] {
    return [...this.adopted.keys()];
  }

  async connect(): Promise<void> {
    await this.own.subscribe(this.presence('+'), (topic, payload) => {
      const id = topic.slice(topic.lastIndexOf('/') + 1);
      if (id === this.opts.clientId) return;
      // An empty retained message clears a hub that is gone for good (docs/config.md).
      if (payload.length === 0) {
        this.peers.delete(id);
        this.release(id);
      } else this.peers.set(id, payload.toString() === ONLINE);
      this.check();
    });
    await this.own.connect();
    this.timer = setInterval(() => this.check(), this.opts.checkMs ?? 10_000);
    this.timer.unref();
  }

  publish(topic: string, payload: Buffer): Promise<void> {
    return this.own.publish(topic, payload);
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.subs.push({ filter, handler });
    await this.own.subscribe(filter, handler);
    for (const t of this.adopted.values()) await t.subscribe(filter, handler);
  }

  onStatus(listener: (status: 'up' | 'down') => void): void {
    this.own.onStatus(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // A clean stop sends no will: say it, so another hub takes the session over until we return.
    if (this.own.connected) await this.announce(GONE);
    await Promise.all([...this.adopted.values()].map((t) => t.close()));
    this.adopted.clear();
    await this.own.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private share() {
    return { group: `rampart-${this.opts.fleet}-hubs`, filters: this.opts.shared };
  }

  private presence(id: string): string {
    return `rampart/${this.opts.fleet}/hubs/${id}`;
  }

  private async announce(state: string): Promise<void> {
    await this.own
      .publish(this.presence(this.opts.clientId), Buffer.from(state), { retain: true })
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'hub presence not published'));
  }

  /** The live hub that holds gone hub `id`'s session: the next online one in client-id order. */
  private keeperOf(id: string): string | undefined {
    const self = this.opts.clientId;
    const all = [...new Set([...this.peers.keys(), self])].sort();
    const online = (h: string) => (h === self ? this.own.connected : this.peers.get(h) === true);
    const at = all.indexOf(id);
    for (let k = 1; k < all.length; k++) {
      const h = all[(at + k) % all.length]!;
      if (online(h)) return h;
    }
    return undefined;
  }

  /** Takes over the sessions this hub should hold, and hands back those it should not. */
  private check(): void {
    if (this.closed) return;
    const self = this.opts.clientId;
    for (const [id, up] of this.peers) {
      const mine = !up && this.own.connected && this.keeperOf(id) === self;
      if (mine && !this.adopted.has(id) && (this.cooldown.get(id) ?? 0) <= Date.now()) this.adopt(id);
      else if (!mine && this.adopted.has(id)) this.release(id);
    }
  }

  private adopt(id: string): void {
    this.log.warn({ hub: id }, 'a hub of this fleet is gone: taking its bus session over until it returns');
    const t = new MqttClientTransport({
      ...this.opts,
      clientId: id,
      clean: false,
      share: this.share(),
      will: undefined,
      // Never reconnects in a loop with its owner: a close ends the adoption (see below).
      maxReconnectMs: 60_000,
    });
    this.adopted.set(id, t);
    // The owner connecting again closes this connection: hand the session back, and keep off it
    // a while (its presence may arrive a moment after). A broker restart ends it too; the next
    // check takes the session again if its owner is still gone.
    t.onStatus((s) => {
      if (s === 'down' && this.adopted.get(id) === t) {
        this.cooldown.set(id, Date.now() + COOLDOWN_MS);
        this.release(id);
      }
    });
    void (async () => {
      for (const s of this.subs) await t.subscribe(s.filter, s.handler);
      await t.connect();
    })().catch((err: unknown) => {
      this.log.warn({ hub: id, err: (err as Error).message }, 'taking a gone hub session over failed');
      if (this.adopted.get(id) === t) this.release(id);
    });
  }

  private release(id: string): void {
    const t = this.adopted.get(id);
    this.adopted.delete(id);
    if (!t) return;
    this.log.info({ hub: id }, 'handing a hub bus session back');
    void t.close();
  }
}

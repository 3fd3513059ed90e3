import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import type { Aedes, AedesPublishPacket, AuthenticateError, Client, PublishPacket } from 'aedes';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { DEFAULT_BROKER_PORT, DEFAULT_LISTEN } from '../core/paths.js';
import { type GuardedConnection, guardPacketSize } from './packet-guard.js';
import { isValidFilter } from './topic-match.js';
import { type MessageHandler, runHandler, type Transport } from './transport.js';

export interface EmbeddedBrokerOptions {
  /** Listen address, default 127.0.0.1 (a lone machine exposes nothing). */
  host?: string;
  /** Default DEFAULT_BROKER_PORT (7781); 0 picks a free port (tests). */
  port?: number;
  /**
   * Checks a network client's credentials: username = node name, password = its node token.
   * When set, clients without valid credentials are refused, a node may publish only on its own
   * reports topic and may not read other nodes' reports. When unset, anyone may connect, but
   * still only the hub (in-process) can publish decisions.
   */
  authenticate?: (username: string, password: string) => boolean | Promise<boolean>;
  /** Largest MQTT packet a client may send, default 1 MiB; a larger one closes its connection. */
  maxPacketBytes?: number;
  /** PEM contents: serve MQTT over TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  logger?: Logger;
}

const DEFAULT_MAX_PACKET_BYTES = 1024 * 1024;

/**
 * The MQTT 3.1.1 broker inside the hub process (aedes). It is also the hub's Transport:
 * `publish`/`subscribe` go straight into the broker, no socket. Agents connect to it with
 * {@link MqttClientTransport}; aedes keeps their persistent sessions in memory (after a hub
 * restart they catch up over HTTP).
 */
export class EmbeddedMqttBroker implements Transport {
  readonly name = 'mqtt-embedded';
  private aedes: Aedes | undefined;
  private server: Server | undefined;
  private readonly statusListeners: ((s: 'up' | 'down') => void)[] = [];
  private readonly users = new WeakMap<Client, string>();
  private readonly connections = new WeakMap<Client, GuardedConnection>();
  /** Authenticated connections by node name, for {@link throttle}. */
  private readonly byNode = new Map<string, Set<GuardedConnection>>();
  /** When each held node's hold ends: a connection it opens meanwhile is held too. */
  private readonly heldUntil = new Map<string, number>();
  private boundPort: number | undefined;
  private starting: Promise<void> | undefined;
  private closed = false;
  private readonly log: Logger;

  constructor(private readonly opts: EmbeddedBrokerOptions = {}) {
    this.log = opts.logger ?? silentLogger();
  }

  /** The port actually listened on (useful with port 0); undefined before connect(). */
  get port(): number | undefined {
    return this.boundPort;
  }

  get host(): string {
    return this.opts.host ?? DEFAULT_LISTEN;
  }

  /** Network clients connected now. */
  get clients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** Starts the broker and listens; throws E_BUS naming the port and the fix when it is taken. */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new RampartError('E_BUS', 'embedded broker is closed'));
    this.starting ??= this.start();
    return this.starting;
  }

  publish(topic: string, payload: Buffer): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || this.closed)
      return Promise.reject(new RampartError('E_BUS', 'embedded broker is not running'));
    const packet: PublishPacket = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false };
    return new Promise((resolve, reject) => {
      // In-process publishes (client null) skip authorizePublish: this is how only the hub can
      // publish decisions. The callback fires once the message is stored for offline sessions.
      aedes.publish(packet, (err) =>
        err
          ? reject(new RampartError('E_BUS', `publish on ${topic} failed: ${err.message}`, { cause: err }))
          : resolve(),
      );
    });
  }

  subscribe(filter: string, handler: MessageHandler): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || this.closed)
      return Promise.reject(new RampartError('E_BUS', 'embedded broker is not running'));
    if (!isValidFilter(filter))
      return Promise.reject(new RampartError('E_BUS', `invalid topic filter ${filter}`));
    const deliver = (packet: AedesPublishPacket, done: () => void) => {
      // Broker-internal notices ($SYS heartbeats) are not ours.
      if (!packet.topic.startsWith('$')) {
        const p = packet.payload;
        void runHandler(handler, packet.topic, Buffer.isBuffer(p) ? p : Buffer.from(p), this.log);
      }
      done();
    };
    return new Promise((resolve) => aedes.subscribe(filter, deliver, () => resolve()));
  }

  /**
   * Reads nothing from `node`'s authenticated connections for `ms`: the hub's answer to a node
   * whose messages it keeps refusing (a flood costs the sender its own buffers, not the hub's
   * CPU). Returns how many connections were held; without authentication there are none.
   */
  throttle(node: string, ms: number): number {
    this.heldUntil.set(node, Math.max(this.heldUntil.get(node) ?? 0, performance.now() + ms));
    const conns = this.byNode.get(node);
    if (!conns) return 0;
    for (const c of conns) c.holdFor(ms);
    return conns.size;
  }

  onStatus(listener: (status: 'up' | 'down') => void): void {
    this.statusListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.starting?.catch(() => undefined);
    const aedes = this.aedes;
    const server = this.server;
    if (aedes) await new Promise<void>((r) => aedes.close(() => r()));
    if (server?.listening) await new Promise<void>((r) => server.close(() => r()));
    if (aedes) this.emit('down');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async start(): Promise<void> {
    const { Aedes } = await import('aedes');
    // aedes writes every packet through mqtt-packet, whose default pre-builds 65,536 two-byte
    // Buffers (≈ 8 MB, kept for good) on its first write; the instance aedes itself resolves.
    const packets = createRequire(createRequire(import.meta.url).resolve('aedes'))('mqtt-packet') as {
      writeToStream: { cacheNumbers: boolean };
    };
    packets.writeToStream.cacheNumbers = false;
    const aedes = await Aedes.createBroker({
      // One agent that stops reading must not stall delivery to the fleet for aedes' default 60 s.
      drainTimeout: 10_000,
      authenticate: (client, username, password, done) => {
        this.checkCredentials(client, username, password).then(
          (ok) => {
            if (ok) return done(null, true);
            const err = new Error('bad user name or password') as AuthenticateError;
            err.returnCode = 4; // CONNACK: bad user name or password
            done(err, false);
          },
          () => done(null, false),
        );
      },
      authorizePublish: (client, packet, done) => {
        // The hub's own publishes (aedes.publish) never come here; a null client is a stale will.
        if (this.mayPublish(client, packet.topic)) return done(null);
        this.log.warn({ client: client?.id, topic: packet.topic }, 'refused publish from MQTT client');
        // MQTT 3.1.1 has no negative PUBACK: aedes closes the connection.
        done(new Error(`not authorized to publish on ${packet.topic}`));
      },
      authorizeSubscribe: (client, sub, done) => {
        if (this.maySubscribe(client, sub.topic)) return done(null, sub);
        this.log.warn({ client: client.id, topic: sub.topic }, 'refused subscription from MQTT client');
        done(null, null);
      },
    });
    aedes.on('clientError', (client, err) =>
      this.log.debug({ client: client.id, err: err.message }, 'mqtt client error'),
    );
    this.aedes = aedes;
    const net = await import('node:net');
    const tls = await import('node:tls');
    const maxBytes = this.opts.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
    const accept = (socket: Socket) => {
      const conn = guardPacketSize(socket, maxBytes, (declared) =>
        this.log.warn(
          { remote: socket.remoteAddress, declared, maxBytes },
          'MQTT packet too large: connection closed',
        ),
      );
      this.connections.set(aedes.handle(conn), conn);
    };
    const server = this.opts.tls
      ? tls.createServer({ cert: this.opts.tls.cert, key: this.opts.tls.key, ca: this.opts.tls.ca }, accept)
      : net.createServer(accept);
    this.server = server;
    const port = this.opts.port ?? DEFAULT_BROKER_PORT;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, this.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await new Promise<void>((r) => aedes.close(() => r()));
      throw listenError(err as NodeJS.ErrnoException, this.host, port);
    }
    server.on('error', (err) => this.log.error({ err: err.message }, 'embedded broker socket error'));
    const addr = server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : port;
    this.log.info(
      { host: this.host, port: this.boundPort, tls: Boolean(this.opts.tls) },
      'embedded MQTT broker listening',
    );
    this.emit('up');
  }

  private async checkCredentials(client: Client, username?: string, password?: Buffer): Promise<boolean> {
    const check = this.opts.authenticate;
    if (!check) return true;
    if (username === undefined || password === undefined) return false;
    if (!(await check(username, password.toString('utf8')))) return false;
    this.users.set(client, username);
    const conn = this.connections.get(client);
    if (conn && !conn.destroyed) {
      const set = this.byNode.get(username) ?? new Set<GuardedConnection>();
      this.byNode.set(username, set);
      set.add(conn);
      // Logging in again must not get a held node out of its hold.
      const until = this.heldUntil.get(username);
      if (until !== undefined) {
        const left = until - performance.now();
        if (left > 0) conn.holdFor(left);
        else this.heldUntil.delete(username);
      }
      conn.once('close', () => {
        set.delete(conn);
        if (set.size === 0 && this.byNode.get(username) === set) this.byNode.delete(username);
      });
    }
    return true;
  }

  /**
   * Network clients may publish under `rampart/` only on `rampart/<fleet>/reports/<node>` (their
   * own node when authentication is on). Decisions come from the hub alone.
   */
  private mayPublish(client: Client | null, topic: string): boolean {
    // `$SYS/...` is the broker's own (aedes' default check, which a custom handler replaces).
    if (topic.startsWith('$')) return false;
    const t = topic.split('/');
    if (t[0] !== 'rampart') return true;
    if (t.length !== 4 || t[2] !== 'reports' || t[3] === '') return false;
    if (!this.opts.authenticate) return true;
    return client !== null && this.users.get(client) === t[3];
  }

  /** With authentication on, nodes read decisions but not each other's reports. */
  private maySubscribe(client: Client, filter: string): boolean {
    if (!this.opts.authenticate) return true;
    const f = filter.split('/');
    if (f[0] === '#' || f[0] === '+') return false;
    if (f[0] !== 'rampart') return true;
    return f.length === 3 && f[2] === 'decisions' && this.users.has(client);
  }

  private emit(s: 'up' | 'down'): void {
    for (const l of this.statusListeners) {
      try {
        l(s);
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'status listener threw');
      }
    }
  }
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): RampartError {
  const fix = 'set bus.port in the config or pass --broker-port (0 = any free port)';
  if (err.code === 'EADDRINUSE') {
    return new RampartError(
      'E_BUS',
      `embedded MQTT broker cannot listen on ${host}:${port}: the port is already in use (another broker such as Mosquitto?); ${fix}`,
      { cause: err },
    );
  }
  if (err.code === 'EACCES') {
    return new RampartError(
      'E_BUS',
      `embedded MQTT broker may not listen on ${host}:${port} (needs root below 1024); ${fix}`,
      {
        cause: err,
      },
    );
  }
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
    return new RampartError(
      'E_BUS',
      `embedded MQTT broker cannot listen on ${host}: no such local address; check --listen`,
      {
        cause: err,
      },
    );
  }
  return new RampartError('E_BUS', `embedded MQTT broker cannot listen on ${host}:${port}: ${err.message}`, {
    cause: err,
  });
}

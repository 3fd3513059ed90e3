import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import { fsReason } from '../core/fs-error.js';
import { loaded } from '../core/loaded.js';
import type { Logger } from '../core/logger.js';
import { DEFAULT_BROKER_PORT, DEFAULT_LISTEN } from '../core/paths.js';
import type { AmqpTransport } from './amqp.js';
import type { BusConfig } from './config.js';
import type { MqttClientTransport } from './mqtt-client.js';
import type { EmbeddedMqttBroker } from './mqtt-embedded.js';
import type { MqttHubGroup } from './mqtt-hub-group.js';
import type { NatsStreamSpec, NatsTransport } from './nats.js';
import { type Transport, topics } from './transport.js';
import { busUrls } from './urls.js';

/**
 * The transports' classes, passed in by the caller rather than imported here: `createTransport`
 * (bus/create.ts) gives them all, {@link loadTransport} only the one the config names (each pulls
 * in a client library an agent would otherwise hold for good; ADR 0060). One missing is a bug.
 */
export interface TransportClasses {
  EmbeddedMqttBroker?: typeof EmbeddedMqttBroker;
  MqttClientTransport?: typeof MqttClientTransport;
  MqttHubGroup?: typeof MqttHubGroup;
  NatsTransport?: typeof NatsTransport;
  AmqpTransport?: typeof AmqpTransport;
}

export interface TransportContext {
  role: 'hub' | 'agent';
  fleet: string;
  /** The agent's node name (agents only): its client id and reports topic. */
  node?: string;
  /** The hub's own id (`DATA/hub/hub.id`, hubs only): in its client id on an external MQTT broker. */
  instance?: string;
  /** `--listen`: the embedded broker's address (hub only). */
  listen?: string;
  /** `--broker-port`: overrides `bus.port`. */
  brokerPort?: number;
  /** Embedded broker auth: username = node name, password = node token (hub only). */
  authenticate?: (username: string, password: string) => boolean | Promise<boolean>;
  /** Config file, for error messages. */
  file?: string;
  logger?: Logger;
}

/**
 * The client id when `bus.clientId` is not set: stable, so sessions and durable consumers survive
 * restarts. On MQTT a broker keeps one connection per id and gives the session to the newest, so
 * two hubs of a fleet under one id would evict each other in a loop: each hub has its own
 * (`rampart-<fleet>-hub-<hub.id>`). On NATS and RabbitMQ the hubs share `rampart-<fleet>-hub` on
 * purpose: one durable consumer or queue, each report handled by one hub.
 */
export function defaultClientId(type: BusConfig['type'], ctx: TransportContext): string {
  if (ctx.role === 'agent') return `rampart-${ctx.fleet}-${ctx.node}`;
  if (type === 'mqtt' && ctx.instance) return `rampart-${ctx.fleet}-hub-${ctx.instance}`;
  return `rampart-${ctx.fleet}-hub`;
}

/**
 * Builds the Transport a hub or agent should use from the classes in `impl`. The hub with
 * `embedded` gets the broker itself ({@link EmbeddedMqttBroker}); everything else is a client
 * with a stable, persistent-session client id ({@link defaultClientId}, or `bus.clientId`).
 */
export function transportWith(impl: TransportClasses, config: BusConfig, ctx: TransportContext): Transport {
  const need = <K extends keyof TransportClasses>(k: K) => loaded(impl, k, 'bus');
  const where = (key: string) => ({ file: ctx.file, key: `bus.${key}` });
  const tls = readTls(config, where);
  if (config.type === 'embedded' && ctx.role === 'hub') {
    if (tls && (!tls.cert || !tls.key))
      throw new ConfigError('the embedded broker needs both cert and key', where('tls'));
    return new (need('EmbeddedMqttBroker'))({
      host: ctx.listen ?? DEFAULT_LISTEN,
      port: ctx.brokerPort ?? config.port ?? DEFAULT_BROKER_PORT,
      ...(ctx.authenticate ? { authenticate: ctx.authenticate } : {}),
      ...(tls?.cert && tls.key
        ? { tls: { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : {}) } }
        : {}),
      ...(ctx.logger ? { logger: ctx.logger } : {}),
    });
  }
  const urls = busUrls(config.url);
  if (urls.length === 0) {
    throw new ConfigError(
      "agents connect to the hub's broker: set url (rampart join writes it), e.g. mqtt://hub:7781",
      where('url'),
    );
  }
  if (ctx.role === 'agent' && !ctx.node)
    throw new ConfigError('an agent needs its node name', where('clientId'));
  const password =
    config.passwordFile !== undefined
      ? readText(config.passwordFile, where('passwordFile')).trim()
      : config.password;
  const clientId = config.clientId ?? defaultClientId(config.type, ctx);
  if (config.type === 'nats') {
    return new (need('NatsTransport'))({
      servers: urls,
      clientId,
      streams: natsStreams(ctx.fleet, config.maxAgeSeconds),
      ...(config.replicas !== undefined ? { replicas: config.replicas } : {}),
      ...(config.heartbeatSeconds !== undefined ? { heartbeatMs: config.heartbeatSeconds * 1000 } : {}),
      ...(config.username !== undefined ? { user: config.username, pass: password ?? '' } : {}),
      ...(config.credsFile ? { creds: readBytes(config.credsFile, where('credsFile')) } : {}),
      ...(config.nkeyFile
        ? { nkeySeed: new TextEncoder().encode(readText(config.nkeyFile, where('nkeyFile')).trim()) }
        : {}),
      ...(tls ? { tls } : {}),
      ...(ctx.logger ? { logger: ctx.logger } : {}),
    });
  }
  if (config.type === 'amqp') {
    return new (need('AmqpTransport'))({
      urls: urls.map((u) => withCredentials(u, config.username, password)),
      clientId,
      ...(config.queueType ? { queueType: config.queueType } : {}),
      ...(tls ? { tls } : {}),
      ...(ctx.logger ? { logger: ctx.logger } : {}),
    });
  }
  const mqtt = {
    url: urls[0]!,
    ...(urls.length > 1 ? { fallbackUrls: urls.slice(1) } : {}),
    clientId,
    ...(config.username !== undefined ? { username: config.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(tls ? { tls } : {}),
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  };
  // Hubs share the reports (one hub per report) and hold the session of a hub that is gone.
  if (ctx.role === 'hub')
    return new (need('MqttHubGroup'))({ ...mqtt, fleet: ctx.fleet, shared: [topics.allReports(ctx.fleet)] });
  return new (need('MqttClientTransport'))(mqtt);
}

/** The one class {@link transportWith} will use for this config and role. */
export function transportClass(config: BusConfig, role: TransportContext['role']): keyof TransportClasses {
  if (config.type === 'embedded' && role === 'hub') return 'EmbeddedMqttBroker';
  if (config.type === 'nats') return 'NatsTransport';
  if (config.type === 'amqp') return 'AmqpTransport';
  return role === 'hub' ? 'MqttHubGroup' : 'MqttClientTransport';
}

/**
 * {@link transportWith} after importing only the transport the config names: what a long-running
 * agent uses, so it holds neither the NATS nor the AMQP client, nor the embedded broker.
 */
export async function loadTransport(config: BusConfig, ctx: TransportContext): Promise<Transport> {
  const name = transportClass(config, ctx.role);
  return transportWith({ [name]: await LOADERS[name]() }, config, ctx);
}

/** Each transport's module, imported on demand. */
const LOADERS: { [K in keyof TransportClasses]-?: () => Promise<NonNullable<TransportClasses[K]>> } = {
  EmbeddedMqttBroker: async () => (await import('./mqtt-embedded.js')).EmbeddedMqttBroker,
  MqttClientTransport: async () => (await import('./mqtt-client.js')).MqttClientTransport,
  MqttHubGroup: async () => (await import('./mqtt-hub-group.js')).MqttHubGroup,
  NatsTransport: async () => (await import('./nats.js')).NatsTransport,
  AmqpTransport: async () => (await import('./amqp.js')).AmqpTransport,
};

function readTls(config: BusConfig, where: (key: string) => { file?: string; key: string }) {
  const t = config.tls;
  if (!t) return undefined;
  return {
    ...(t.ca ? { ca: readText(t.ca, where('tls.ca')) } : {}),
    ...(t.cert ? { cert: readText(t.cert, where('tls.cert')) } : {}),
    ...(t.key ? { key: readText(t.key, where('tls.key')) } : {}),
    ...(t.rejectUnauthorized !== undefined ? { rejectUnauthorized: t.rejectUnauthorized } : {}),
  };
}

/**
 * The JetStream layout for a fleet: decisions on a limits stream (every agent's durable consumer
 * sees all of them; kept `maxAgeSeconds` for agents that were away), reports on a work-queue
 * stream (each report handled by one hub, removed once acknowledged).
 */
export function natsStreams(fleet: string, maxAgeSeconds?: number): NatsStreamSpec[] {
  return [
    {
      name: `RAMPART_${fleet}_DECISIONS`,
      topics: [topics.decisions(fleet)],
      retention: 'limits',
      ...(maxAgeSeconds !== undefined ? { maxAgeMs: maxAgeSeconds * 1000 } : {}),
    },
    { name: `RAMPART_${fleet}_REPORTS`, topics: [topics.allReports(fleet)], retention: 'workqueue' },
  ];
}

/** AMQP takes credentials in the URL; `username`/`password(File)` fill them in when absent. */
function withCredentials(url: string, username?: string, password?: string): string {
  if (username === undefined) return url;
  const u = new URL(url);
  if (!u.username) {
    u.username = encodeURIComponent(username);
    if (password !== undefined) u.password = encodeURIComponent(password);
  }
  return u.toString();
}

function readBytes(path: string, where: { file?: string; key: string }): Uint8Array {
  return new TextEncoder().encode(readText(path, where));
}

function readText(path: string, where: { file?: string; key: string }): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${fsReason(err)}`, where, { cause: err });
  }
}

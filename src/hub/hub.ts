import type { KeyObject } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type BusConfig, createTransport } from '../bus/create.js';
import type { EmbeddedMqttBroker } from '../bus/mqtt-embedded.js';
import { type Transport, topics } from '../bus/transport.js';
import { busUrls } from '../bus/urls.js';
import { lockDataFolder } from '../core/data-lock.js';
import type { Decision } from '../core/decision.js';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { DEFAULT_API_PORT, DEFAULT_LISTEN } from '../core/paths.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import { encryptionKeyFromText } from '../trust/envelope.js';
import { publicKeyToText } from '../trust/keys.js';
import { buildApi } from './api.js';
import { Authenticator, tokenHash } from './auth.js';
import { HubCore } from './core.js';
import { SessionStore } from './dashboard/sessions.js';
import { builtinFleetRules, resolveFleetPolicy } from './fleet-policy.js';
import { HUB_FILES, type HubInfo, loadOrCreateInstanceId, prepareHubDir, writeHubInfo } from './hub-files.js';
import { BusIntake, type BusIntakeOptions } from './intake/bus-intake.js';
import { OffenderThrottle } from './intake/offender-throttle.js';
import { HubMetrics } from './metrics.js';
import { Policy, type PolicyConfig } from './policy.js';

export interface HubOptions {
  /** Data folder; the hub keeps its state in `dataDir/hub/`. */
  dataDir: string;
  /** Fleet name (topic prefix); default the one stored at first start, else `default`. */
  fleet?: string;
  /** Address for the API and the embedded broker, default 127.0.0.1. */
  listen?: string;
  /** API port, default 7780; 0 picks a free one (hub.url and hub.json tell which). */
  apiPort?: number;
  /** Embedded broker port (default 7781, 0 = any); overrides bus.port. */
  brokerPort?: number;
  /** URL other servers use to reach the API (put in join tokens). */
  publicUrl?: string;
  /** The `bus:` config section (default: embedded broker). */
  bus?: BusConfig;
  /** A ready Transport instead of building one from `bus` (tests, embedding). */
  transport?: Transport;
  /** Embedded broker requires node name + node token as MQTT credentials. Default true. */
  brokerAuth?: boolean;
  /** How long the decision log keeps entries, default 7 days. */
  retentionMs?: number;
  /** How often expired bans and old log entries are swept, default 60 s. */
  sweepIntervalMs?: number;
  /** How often node keys and the allowlist are reloaded from the store (other hubs), default 10 s. */
  refreshIntervalMs?: number;
  /** How often decisions the bus refused are sent again while it is up, default 2 s. */
  republishIntervalMs?: number;
  /** Join tokens' validity, default 24 h. */
  joinTtlMs?: number;
  policy?: Partial<PolicyConfig>;
  /** Ranges never banned, from the config file (the API's allowlist is kept in the store). */
  allowlist?: string[];
  /**
   * Refuse (without force) bans of this machine's interface addresses; default true. Tests that
   * run the hub in the root namespace turn it off: the host's own address may be a test address.
   */
  protectInterfaces?: boolean;
  /** `hub.blocklist.public`: serve `/v1/blocklist` without a key (it tells what the fleet knows). */
  blocklistPublic?: boolean;
  /** Serve the API over HTTPS with these PEM files. */
  tls?: { cert: string; key: string };
  /** Envelope acceptance window (ms), default 60 s. */
  windowMs?: number;
  /** Bounds of the per-node bus intake queues (defaults in intake/bus-intake.ts). */
  intake?: BusIntakeOptions;
  /** Replaces the SQLite store (another implementation, tests). */
  store?: Store;
  /** `hub.store` / `--store`: a postgres:// URL; several hubs may share the database. */
  storeUrl?: string;
  log?: Logger;
  /** Config file the options came from, for error messages. */
  configFile?: string;
}

/** A running hub. */
export interface Hub {
  /** Base URL of the API as reached from this machine, e.g. `http://127.0.0.1:7780`. */
  readonly url: string;
  /** URL in join tokens (reachable by other servers). */
  readonly publicUrl: string;
  readonly fleet: string;
  readonly publicKey: KeyObject;
  /** {@link publicKeyToText} of the hub key: what agents pin. */
  readonly publicKeyText: string;
  readonly adminToken: string;
  readonly store: Store;
  readonly core: HubCore;
  /** The hub's own transport: for the embedded broker, in-process publish/subscribe. */
  readonly bus: Transport;
  /** What agents are told at join: `{type, url}`. */
  readonly busInfo: { type: string; url: string };
  readonly metrics: HubMetrics;
  /** Where the bus delivers what nodes publish: per-node fair queues (intake/bus-intake.ts). */
  readonly intake: BusIntake;
  /** Every decision appended, in seq order (for an in-process agent); returns an unsubscribe. */
  onDecision(fn: (d: Decision) => void): () => void;
  close(): Promise<void>;
}

const DAY = 86_400_000;

/**
 * Starts a hub: loads or creates its key, admin token and store in `dataDir/hub/`, starts the bus
 * (the embedded broker by default), subscribes to reports, serves the API and writes `hub.json`.
 */
export async function startHub(opts: HubOptions): Promise<Hub> {
  const log = opts.log ?? silentLogger();
  const lock = await lockDataFolder(opts.dataDir, 'hub');
  let prepared: ReturnType<typeof prepareHubDir>;
  let store: Store;
  try {
    prepared = prepareHubDir(opts.dataDir);
    store =
      opts.store ??
      (await openStore(opts.storeUrl, join(prepared.dir, HUB_FILES.db), {
        file: opts.configFile,
        key: 'hub.store',
      }));
  } catch (err) {
    await lock.release();
    throw err;
  }
  const { dir, keys, adminToken, metricsToken, viewerToken } = prepared;
  const cleanup: Array<() => Promise<unknown>> = [() => lock.release(), () => store.close()];
  const undo = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };
  try {
    const stored = await store.getMeta('fleet');
    const fleet = opts.fleet ?? stored ?? 'default';
    // Written only when it changes: a restart on a full disk must not need to write.
    if (stored !== fleet) await store.setMeta('fleet', fleet);
    const listen = opts.listen ?? DEFAULT_LISTEN;
    const busConfig: BusConfig = opts.bus ?? { type: 'embedded' };
    const transport =
      opts.transport ??
      createTransport(busConfig, {
        role: 'hub',
        fleet,
        ...(busConfig.type === 'mqtt' && !busConfig.clientId
          ? { instance: loadOrCreateInstanceId(dir) }
          : {}),
        listen,
        ...(opts.brokerPort !== undefined ? { brokerPort: opts.brokerPort } : {}),
        ...(opts.brokerAuth === false ? {} : { authenticate: brokerAuth(store) }),
        ...(opts.configFile ? { file: opts.configFile } : {}),
        logger: log,
      });
    // A node the hub keeps refusing is held (ADR 0037): its bus connections are not read (only a
    // broker the hub runs itself can do that) and its HTTP reports get 429 for a while.
    const throttleOpts = opts.intake?.throttle;
    const throttle =
      throttleOpts === false
        ? undefined
        : new OffenderThrottle(
            (node, ms) => transport.throttle?.(node, ms) ?? 0,
            (node, ms, connections) => {
              core.metrics.held.inc();
              log.warn(
                { node, holdMs: ms, connections },
                'node keeps sending messages the hub refuses: it is not read for a while',
              );
            },
            throttleOpts,
          );
    const core = new HubCore({
      store,
      policy: new Policy({
        ...opts.policy,
        fleet: resolveFleetPolicy(opts.policy?.fleet, builtinFleetRules()),
      }),
      metrics: new HubMetrics({
        active: async () => (await store.countActive(Date.now())).total,
        head: () => store.head(),
      }),
      keys,
      fleet,
      log,
      windowMs: opts.windowMs,
      ...(busConfig.encryptionKey ? { encryptionKey: encryptionKeyFromText(busConfig.encryptionKey) } : {}),
      publish: (bytes) => transport.publish(topics.decisions(fleet), bytes),
      onNodeRefused: (node, reason) => throttle?.strike(node, reason),
    });
    await core.init(opts.allowlist);
    const retentionMs = opts.retentionMs ?? 7 * DAY;
    // Pruning frees space later; failing to prune now (a full disk) must not stop the restart.
    await core
      .sweep(retentionMs)
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'start-up sweep failed'));

    await transport.connect();
    cleanup.push(() => transport.close());
    let busUp = true;
    transport.onStatus((s) => {
      busUp = s === 'up';
      if (busUp) void core.republish();
    });
    // A publish can also fail with the connection up (a cluster electing a new stream leader).
    const resend = setInterval(() => {
      if (busUp && core.unpublishedDecisions > 0) void core.republish();
    }, opts.republishIntervalMs ?? 2_000);
    resend.unref();
    cleanup.push(async () => clearInterval(resend));
    // Per-node queues served round-robin: one node flooding cannot hold up another's reports.
    // The promise tells a broker with acks (JetStream work queue, AMQP) when the report is
    // decided and stored: a hub killed before that leaves it to another hub.
    const intake = new BusIntake(core, log, opts.intake);
    core.metrics.intakeQueued = () => intake.queued;
    await transport.subscribe(topics.allReports(fleet), (topic, payload) =>
      intake.take(topic, payload).catch((err: unknown) => {
        log.error({ err: (err as Error).message, topic }, 'handling a bus message failed');
        throw err;
      }),
    );

    const scheme = opts.tls ? 'https' : 'http';
    let boundPort = opts.apiPort ?? DEFAULT_API_PORT;
    const localUrl = () => `${scheme}://${urlHost(isWildcard(listen) ? '127.0.0.1' : listen)}:${boundPort}`;
    const publicUrl = () =>
      opts.publicUrl ?? `${scheme}://${urlHost(isWildcard(listen) ? outwardAddress() : listen)}:${boundPort}`;
    const busInfo = (): { type: string; url: string; connected?: boolean } => {
      const embedded = transport.name === 'mqtt-embedded' ? (transport as EmbeddedMqttBroker) : undefined;
      if (embedded) {
        const host = new URL(publicUrl()).hostname;
        return { type: 'mqtt', url: `mqtt://${host}:${embedded.port}`, connected: busUp };
      }
      return { type: busConfig.type, url: busUrls(busConfig.url).join(','), connected: busUp };
    };

    const app: FastifyInstance = buildApi(
      {
        core,
        auth: new Authenticator(adminToken, store, metricsToken, viewerToken),
        publicUrl,
        hubPublicKey: keys.publicKey,
        hubPublicKeyText: publicKeyToText(keys.publicKey),
        bus: busInfo,
        joinTtlMs: opts.joinTtlMs ?? DAY,
        sessions: new SessionStore(core.now),
        log,
        blocklistPublic: opts.blocklistPublic === true,
        heldFor: (node) => throttle?.heldFor(node) ?? 0,
      },
      { tls: opts.tls },
    );
    try {
      await app.listen({ host: listen, port: boundPort });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message;
      throw new RampartError(
        'E_HTTP',
        `hub API cannot listen on ${listen}:${boundPort}: ${why}; pass --port N (0 = any free port)`,
        {
          cause: err,
        },
      );
    }
    cleanup.push(() => app.close());
    const addr = app.server.address();
    if (addr && typeof addr === 'object') boundPort = addr.port;

    core.protectedAddrs.setHub(
      [isWildcard(listen) ? undefined : listen, publicUrl(), busInfo().url, busConfig.url],
      opts.protectInterfaces !== false,
    );
    const info: HubInfo = {
      url: localUrl(),
      fleet,
      bus: { type: busInfo().type, url: busInfo().url },
      pid: process.pid,
    };
    try {
      writeHubInfo(dir, info);
    } catch (err) {
      // The hub serves without it; only the no-flag CLI on this machine needs it.
      log.error(
        { err: (err as Error).message, dir },
        'cannot write hub.json (disk full?): operator commands here need --hub and --token',
      );
    }

    const timer = setInterval(() => {
      core
        .sweep(retentionMs)
        .catch((err: unknown) => log.error({ err: (err as Error).message }, 'sweep failed'));
    }, opts.sweepIntervalMs ?? 60_000);
    timer.unref();
    cleanup.push(async () => clearInterval(timer));
    // Other hubs on the same store enrol and remove nodes and edit the allowlist.
    const refresh = setInterval(() => {
      core
        .refreshShared()
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'refreshing shared state failed'));
    }, opts.refreshIntervalMs ?? 10_000);
    refresh.unref();
    cleanup.push(async () => clearInterval(refresh));

    log.info({ url: info.url, publicUrl: publicUrl(), fleet, bus: info.bus }, 'hub started');
    let closing: Promise<void> | undefined;
    return {
      url: info.url,
      publicUrl: publicUrl(),
      fleet,
      publicKey: keys.publicKey,
      publicKeyText: publicKeyToText(keys.publicKey),
      adminToken,
      store,
      core,
      bus: transport,
      busInfo: info.bus!,
      metrics: core.metrics,
      intake,
      onDecision: (fn) => core.onDecision(fn),
      close() {
        closing ??= (async () => {
          clearInterval(timer);
          clearInterval(refresh);
          clearInterval(resend);
          // Bounded too: a request whose client is gone (an agent stopping mid-report) must not
          // hold the stop; after 2 s the connections still open are cut.
          let cut: NodeJS.Timeout | undefined;
          await Promise.race([
            app.close().catch(() => undefined),
            new Promise<void>((r) => {
              cut = setTimeout(() => {
                app.server.closeAllConnections();
                r();
              }, 2_000);
            }),
          ]);
          clearTimeout(cut);
          // Bounded: a flood may keep the queues from ever emptying. After 5 s what is left is
          // not handled: redelivered by brokers with acks (JetStream, AMQP), lost on MQTT, which
          // acknowledged it at receipt (ADR 0027).
          let giveUp: NodeJS.Timeout | undefined;
          await Promise.race([
            intake.drain(),
            new Promise((r) => {
              giveUp = setTimeout(r, 5_000);
            }),
          ]);
          clearTimeout(giveUp);
          await core.drain();
          await transport.close().catch(() => undefined);
          await store.close();
          await lock.release();
        })();
        return closing;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

/** MQTT credentials for the embedded broker: username = node name, password = its node token. */
function brokerAuth(store: Store) {
  return async (username: string, password: string): Promise<boolean> => {
    const node = await store.nodeByTokenHash(tokenHash(password));
    return node?.name === username;
  };
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The first non-internal IPv4 address, for join tokens when the hub listens on every address. */
function outwardAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { PACKED_DECISIONS, unpackDecisions } from '../../src/core/packed-decisions.js';
import { type Hub, type HubOptions, startHub } from '../../src/hub/hub.js';
import { open, ReplayCache } from '../../src/trust/envelope.js';
import { generateKeyPair, type KeyPair, publicKeyToText } from '../../src/trust/keys.js';

export interface TestHub {
  hub: Hub;
  dataDir: string;
  /** JSON call with the admin token unless `token` is given ('' = none). */
  call(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{
    status: number;
    // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field by the assertions
    json: any;
    text: string;
  }>;
  /** Invites and joins a node; returns its key pair and node token. */
  enrol(name: string): Promise<{ keys: KeyPair; token: string }>;
  restart(more?: Partial<HubOptions>): Promise<void>;
  close(): Promise<void>;
}

/** A real hub on port 0 (API and embedded broker) in a fresh temp data folder. */
export async function startTestHub(more: Partial<HubOptions> = {}): Promise<TestHub> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rampart-hub-'));
  // The machine's own interface addresses may be documentation addresses the tests ban: the
  // interface guard is tested in namespaces (test/fleet/defects.test.ts).
  const opts: HubOptions = {
    dataDir,
    apiPort: 0,
    brokerPort: 0,
    sweepIntervalMs: 3_600_000,
    protectInterfaces: false,
    ...more,
  };
  let hub: Hub;
  try {
    hub = await startHub(opts);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const t: TestHub = {
    get hub() {
      return hub;
    },
    dataDir,
    async call(method, path, body, token) {
      const auth = token ?? hub.adminToken;
      const res = await fetch(new URL(path, hub.url), {
        method,
        headers: {
          ...(auth ? { authorization: `Bearer ${auth}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    },
    async enrol(name) {
      const added = await t.call('POST', '/v1/nodes', { name });
      if (added.status !== 201) throw new Error(`nodes add: ${added.text}`);
      const keys = generateKeyPair();
      const joined = await t.call(
        'POST',
        '/v1/join',
        { token: added.json.token, name, publicKey: publicKeyToText(keys.publicKey) },
        '',
      );
      if (joined.status !== 200) throw new Error(`join: ${joined.text}`);
      return { keys, token: joined.json.nodeToken as string };
    },
    async restart(extra = {}) {
      await hub.close();
      hub = await startHub({ ...opts, ...extra });
    },
    async close() {
      await hub.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

/** An MQTT client logged in to the hub's embedded broker as an enrolled node (connected). */
export async function nodeBusClient(
  t: Pick<TestHub, 'hub'>,
  name: string,
  token: string,
): Promise<MqttClientTransport> {
  const client = new MqttClientTransport({
    url: t.hub.busInfo.url,
    clientId: `test-${name}-${process.pid}`,
    username: name,
    password: token,
    clean: true,
    connectTimeoutMs: 5000,
  });
  await client.connect();
  return client;
}

/** Polls a synchronous condition every 20 ms; throws after `ms`. */
export async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Subscribes `client` to the fleet's decisions as an agent would (hub signature, replay cache) and
 * calls `fn` with each decision, single or batched, as it arrives.
 */
export async function onHubDecisions(
  t: TestHub,
  client: MqttClientTransport,
  fn: (d: Decision) => void,
): Promise<void> {
  const replay = new ReplayCache();
  await client.subscribe(topics.decisions('default'), (_topic, payload) => {
    const r = open(payload, {
      keyFor: (f) => (f === 'hub' ? t.hub.publicKey : undefined),
      replay,
      expectKind: ['decision', 'decisions', PACKED_DECISIONS],
    });
    if (!r.ok) return;
    const { kind, body } = r.env;
    const list = kind === PACKED_DECISIONS ? unpackDecisions(body) : kind === 'decisions' ? body : [body];
    for (const d of list as Decision[]) fn(d);
  });
}

/** A node's `report` body for `target`, as the agent sends it (sshd, 5 hits, 10 minutes). */
export function reportBody(target: string) {
  return { target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now() };
}

/** The hub's count of dropped bus messages for one reason. */
export function droppedCount(t: TestHub, reason: string): Promise<number> {
  return t.hub.metrics.value('rampart_hub_dropped_messages_total', { reason });
}

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AmqpTransport } from '../src/bus/amqp.js';
import { type BusConfig, natsStreams } from '../src/bus/create.js';
import { MqttClientTransport } from '../src/bus/mqtt-client.js';
import { NatsTransport } from '../src/bus/nats.js';
import { type Transport, topics } from '../src/bus/transport.js';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { open, ReplayCache } from '../src/trust/envelope.js';
import { publicKeyFromText } from '../src/trust/keys.js';
import { freePort } from '../test/helpers/free-port.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { startPrivateRabbitmq } from '../test/helpers/private-rabbitmq.js';
import type { Emit } from './list.js';
import { cpuMs } from './proc-stats.js';

/*
 * `npm run bench -- fleet-sim`: thousands of light agents against real hubs on every transport.
 * A light agent is a real bus consumer (its own connection and durable subscription: MQTT
 * persistent session, JetStream durable consumer, RabbitMQ quorum queue) that opens and verifies
 * every envelope with the agent's own code, but has no kernel. Hubs are real hub processes (their
 * CPU is read from /proc), on PostgreSQL for the external buses so a second hub can join.
 *
 * Knobs (environment): FLEET_SIM_AGENTS (default 1000,5000), FLEET_SIM_DECISIONS (15 per case),
 * FLEET_SIM_TRANSPORTS (embedded,mosquitto,nats,rabbitmq), FLEET_SIM_BUDGET_S (540),
 * FLEET_SIM_PARALLEL (50 agents connecting at once).
 */
const SIZES = (process.env.FLEET_SIM_AGENTS ?? '1000,5000').split(',').map(Number);
const DECISIONS = Number(process.env.FLEET_SIM_DECISIONS ?? 15);
const ENGINES = (process.env.FLEET_SIM_TRANSPORTS ?? 'embedded,mosquitto,nats,rabbitmq').split(',');
/** Connecting agents stops after this long; the case is measured with those connected. */
const CONNECT_BUDGET_MS = 150_000;
/** A decision not at every agent after this long counts as this long (and `incomplete`). */
const FANOUT_TIMEOUT_MS = 15_000;
const CONNECT_PARALLEL = Number(process.env.FLEET_SIM_PARALLEL ?? 50);
/** No new case starts after this long (FLEET_SIM_BUDGET_S, default 540 s): the run stays near 10 min. */
const BUDGET_MS = Number(process.env.FLEET_SIM_BUDGET_S ?? 540) * 1000;
/** A topology stops after this many decisions that did not reach every agent in time. */
const MAX_INCOMPLETE = 2;
const GOAL_FANOUT_P99_MS = 2_000;
const HUB_MAIN = new URL('./fleet-sim-hub.js', import.meta.url).pathname;

interface HubChild {
  child: ChildProcess;
  url: string;
  dir: string;
  adminToken: string;
  publicKey: string;
  busUrl: string;
}

/** What a transport needs for one case: the hubs' bus section, an agent's transport, cleanup. */
interface Engine {
  name: string;
  /** Several hubs need a shared store and a bus outside the hub (not the embedded broker). */
  multiHub: boolean;
  setUp(fleet: string): Promise<{
    bus: BusConfig;
    agent(i: number, hub: HubChild): Transport;
    /** The process whose RSS is the broker's memory (the hub's own for the embedded broker). */
    brokerPid(hub: HubChild): number;
    tearDown(): Promise<void>;
  }>;
}

const engines: Record<string, Engine> = {
  embedded: {
    name: 'embedded',
    multiHub: false,
    setUp: async (fleet) => ({
      bus: { type: 'embedded' },
      agent: (i, hub) =>
        new MqttClientTransport({ url: hub.busUrl, clientId: `sim-${fleet}-a${i}`, clean: false }),
      brokerPid: (hub) => hub.child.pid!,
      tearDown: async () => undefined,
    }),
  },
  mosquitto: {
    name: 'mosquitto',
    multiHub: true,
    setUp: async (fleet) => {
      // A private Mosquitto: its RSS is ours alone, and its sessions go with it.
      const m = await startMosquitto();
      const url = `mqtt://127.0.0.1:${m.port}`;
      return {
        bus: { type: 'mqtt', url, username: m.username, password: m.password },
        agent: (i) =>
          new MqttClientTransport({
            url,
            clientId: `sim-${fleet}-a${i}`,
            username: m.username,
            password: m.password,
            clean: false,
          }),
        brokerPid: () => pidListening(m.port),
        tearDown: () => m.stop(),
      };
    },
  },
  nats: {
    name: 'nats-jetstream',
    multiHub: true,
    setUp: async (fleet) => {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'rampart-sim-nats-'));
      const server = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      await new Promise<void>((resolve, reject) => {
        let err = '';
        server.stderr!.on('data', (b: Buffer) => {
          err = (err + b.toString()).slice(-4_000);
          if (err.includes('Server is ready')) resolve();
        });
        server.once('exit', (code) => reject(new Error(`nats-server exited ${code}: ${err}`)));
      });
      const url = `nats://127.0.0.1:${port}`;
      return {
        bus: { type: 'nats', url },
        agent: (i) =>
          new NatsTransport({ servers: [url], clientId: `sim-${fleet}-a${i}`, streams: natsStreams(fleet) }),
        brokerPid: () => server.pid!,
        tearDown: async () => {
          const exited = new Promise((r) => server.once('exit', r));
          server.kill('SIGKILL');
          await exited;
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  rabbitmq: {
    name: 'rabbitmq',
    multiHub: true,
    setUp: async (fleet) => {
      // A private node: the shared broker's 1,024 open files are too few for thousands of agents,
      // and its RSS would include every other suite's queues. Its queues go with it.
      const rmq = await startPrivateRabbitmq();
      return {
        bus: { type: 'amqp', url: rmq.url },
        agent: (i) => new AmqpTransport({ urls: [rmq.url], clientId: `sim-${fleet}-a${i}` }),
        brokerPid: () => rmq.pid,
        tearDown: () => rmq.stop(),
      };
    },
  },
};

export default async function fleetSim(emit: Emit): Promise<void> {
  const rows: Array<Record<string, unknown>> = [];
  const start = performance.now();
  // Every transport at the smaller fleet first: when the time budget runs out it is the larger
  // fleets that go unmeasured, never a whole transport.
  for (const size of SIZES) {
    for (const key of ENGINES) {
      const engine = engines[key];
      if (!engine) throw new Error(`FLEET_SIM_TRANSPORTS: unknown transport ${key}`);
      if (performance.now() - start > BUDGET_MS) {
        emit({
          bench: 'fleet-sim',
          transport: engine.name,
          agents: size,
          note: 'skipped: time budget spent',
        });
        continue;
      }
      try {
        for (const row of await runCase(engine, size)) {
          const base = rows.find((r) => r.transport === 'embedded' && r.agents === size);
          const out = {
            bench: 'fleet-sim',
            ...row,
            goalFanoutP99Ms: GOAL_FANOUT_P99_MS,
            ...(base
              ? { p99VsEmbedded: +((row.fanoutP99Ms as number) / (base.fanoutP99Ms as number)).toFixed(2) }
              : {}),
          };
          rows.push(out);
          emit(out);
        }
      } catch (err) {
        emit({ bench: 'fleet-sim', transport: engine.name, agents: size, error: (err as Error).message });
      }
    }
  }
  // How each figure grows from the smallest fleet to the largest, per transport and topology.
  for (const r of rows) {
    if (r.agents !== SIZES.at(-1) || SIZES.length < 2 || r.error) continue;
    const small = rows.find(
      (s) => s.transport === r.transport && s.topology === r.topology && s.agents === SIZES[0],
    );
    if (!small) continue;
    const x = (k: string) => +((r[k] as number) / Math.max(small[k] as number, 0.001)).toFixed(2);
    emit({
      bench: 'fleet-sim',
      growth: `${SIZES[0]}->${r.agents} agents`,
      transport: r.transport,
      topology: r.topology,
      agentsX: +((r.agentsReached as number) / (small.agentsReached as number)).toFixed(2),
      hubCpuPerDecisionX: x('hubCpuMsPerDecision'),
      fanoutP99X: x('fanoutP99Ms'),
      brokerRssX: x('brokerRssMB'),
    });
  }
}

async function runCase(engine: Engine, size: number): Promise<Array<Record<string, unknown>>> {
  const fleet = `sim${randomBytes(3).toString('hex')}`;
  const env = await engine.setUp(fleet);
  // A private broker must not outlive a database that could not be made.
  const db = engine.multiHub
    ? await createTestDatabase().catch(async (err: unknown) => {
        await env.tearDown().catch(() => undefined);
        throw err;
      })
    : undefined;
  const hubs: HubChild[] = [];
  const agents: Transport[] = [];
  const rows: Array<Record<string, unknown>> = [];
  try {
    hubs.push(await spawnHub(env.bus, fleet, db?.url));
    const hubKey = publicKeyFromText(hubs[0]!.publicKey);
    const arrivals = new Map<number, { count: number; last: number }>();
    const rssBefore = rss(env.brokerPid(hubs[0]!));
    const t0 = performance.now();
    let next = 0;
    let connectFailures = 0;
    const connectOne = async () => {
      for (;;) {
        const i = next++;
        if (i >= size || performance.now() - t0 > CONNECT_BUDGET_MS) return;
        const t = env.agent(i, hubs[0]!);
        const replay = new ReplayCache();
        await t.subscribe(topics.decisions(fleet), async (_topic, payload) => {
          // What the agent does with every message before its kernel: size, window, signature.
          const res = open(payload, {
            keyFor: (from) => (from === 'hub' ? hubKey : undefined),
            replay,
            expectKind: ['decision', 'decisions'],
            maxBytes: 1024 * 1024,
          });
          if (!res.ok) return;
          const bodies = res.env.kind === 'decisions' ? (res.env.body as unknown[]) : [res.env.body];
          const now = performance.now();
          for (const b of bodies) {
            const seq = (b as { seq?: number }).seq ?? 0;
            const a = arrivals.get(seq) ?? { count: 0, last: 0 };
            a.count++;
            a.last = now;
            arrivals.set(seq, a);
          }
        });
        try {
          await t.connect();
          agents.push(t);
        } catch {
          // A broker too busy to accept: the case goes on with the agents it took, and says so.
          connectFailures++;
          await t.close().catch(() => undefined);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECT_PARALLEL }, connectOne));
    const connectSeconds = +((performance.now() - t0) / 1000).toFixed(1);
    // Let subscriptions settle (durable consumers created, sessions stored) before reading memory.
    await new Promise((r) => setTimeout(r, 3_000));
    const brokerRssMB = +(rss(env.brokerPid(hubs[0]!)) / 1024).toFixed(1);
    const common = {
      transport: engine.name,
      agents: size,
      agentsReached: agents.length,
      connectFailures,
      connectSeconds,
      brokerRssMB,
      brokerRssPerAgentKB: +((rss(env.brokerPid(hubs[0]!)) - rssBefore) / agents.length).toFixed(1),
    };
    if (agents.length === 0) throw new Error(`no agent could connect (${connectFailures} failures)`);
    rows.push({ ...common, topology: 'one-hub', ...(await measure(hubs, agents.length, arrivals, size)) });
    if (engine.multiHub) {
      // An MQTT client id is one session: two hubs under the default id would evict each other.
      const bus = env.bus.type === 'mqtt' ? { ...env.bus, clientId: `rampart-${fleet}-hub1` } : env.bus;
      try {
        hubs.push(await spawnHub(bus, fleet, db?.url, hubs[0]!.dir));
        rows.push({
          ...common,
          topology: 'two-hubs',
          ...(await measure(hubs, agents.length, arrivals, size)),
        });
      } catch (err) {
        // The one-hub figures stand; say why the second hub's are missing (a broker that no
        // longer accepts connections, for one).
        rows.push({ ...common, topology: 'two-hubs', hubs: 2, error: (err as Error).message.slice(0, 300) });
      }
    }
    return rows;
  } finally {
    const closing = agents.splice(0);
    for (let i = 0; i < closing.length; i += 200)
      await Promise.all(closing.slice(i, i + 200).map((t) => t.close().catch(() => undefined)));
    for (const h of hubs) await stopHub(h);
    // Durable state goes with its broker: the private servers are killed with their stores, the
    // private RabbitMQ node goes with its folder, the embedded broker's sessions end with the hub.
    await env.tearDown().catch(() => undefined);
    await db?.drop().catch(() => undefined);
    for (const h of hubs) rmSync(h.dir, { recursive: true, force: true });
  }
}

/**
 * DECISIONS bans one at a time through the hubs' API (round robin); for each, the time from the
 * request to the moment the last agent verified it; the hubs' CPU time over the whole run, less
 * what they spend idle (timers, broker heartbeats) in as long, per decision.
 */
async function measure(
  hubs: HubChild[],
  agents: number,
  arrivals: Map<number, { count: number; last: number }>,
  size: number,
): Promise<Record<string, unknown>> {
  const pids = hubs.map((h) => h.child.pid!);
  const idleMs = 3_000;
  const idle0 = cpuMs(pids);
  await new Promise((r) => setTimeout(r, idleMs));
  const idleRate = (cpuMs(pids) - idle0) / idleMs;
  const fanout: number[] = [];
  let incomplete = 0;
  const cpu0 = cpuMs(pids);
  const sim0 = process.cpuUsage();
  const w0 = performance.now();
  let done = 0;
  for (let k = 0; k < DECISIONS && incomplete < MAX_INCOMPLETE; k++, done++) {
    const hub = hubs[k % hubs.length]!;
    const target = `2001:db8:${size.toString(16)}:${hubs.length}${k.toString(16).padStart(3, '0')}::1`;
    const t0 = performance.now();
    const res = await fetch(new URL('/v1/decisions', hub.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ target, duration: '1h', reason: 'fleet-sim' }),
    });
    const d = (await res.json()) as { seq?: number; error?: string };
    if (res.status !== 201 || !d.seq) throw new Error(`ban refused: ${res.status} ${d.error}`);
    const seq = d.seq;
    const end = t0 + FANOUT_TIMEOUT_MS;
    while ((arrivals.get(seq)?.count ?? 0) < agents && performance.now() < end)
      await new Promise((r) => setTimeout(r, 2));
    const a = arrivals.get(seq);
    if ((a?.count ?? 0) < agents) {
      incomplete++;
      fanout.push(FANOUT_TIMEOUT_MS);
    } else fanout.push(a!.last - t0);
  }
  const wallMs = performance.now() - w0;
  const cpu = cpuMs(pids) - cpu0 - idleRate * wallMs;
  const sim = process.cpuUsage(sim0);
  fanout.sort((x, y) => x - y);
  return {
    hubs: hubs.length,
    decisions: done,
    hubCpuMsPerDecision: +(Math.max(cpu, 0) / done).toFixed(2),
    // The light agents all live in this one process: their verifies queue behind each other here,
    // where a real fleet verifies on N machines at once. This is the part of fan-out that is ours.
    simCpuMsPerDecision: +((sim.user + sim.system) / 1000 / done).toFixed(1),
    hubIdleCpuMsPerSec: +(idleRate * 1000).toFixed(2),
    fanoutP50Ms: +fanout[Math.floor(fanout.length * 0.5)]!.toFixed(1),
    fanoutP99Ms: +fanout[Math.min(fanout.length - 1, Math.floor(fanout.length * 0.99))]!.toFixed(1),
    incomplete,
  };
}

async function spawnHub(
  bus: BusConfig,
  fleet: string,
  storeUrl?: string,
  keyFrom?: string,
): Promise<HubChild> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-sim-hub-'));
  if (keyFrom) {
    // A second hub signs with the same key (what agents pin) and takes the same admin token.
    mkdirSync(join(dir, 'hub'), { recursive: true, mode: 0o700 });
    for (const f of ['hub.key', 'admin.token']) copyFileSync(join(keyFrom, 'hub', f), join(dir, 'hub', f));
  }
  const opts = {
    dataDir: dir,
    fleet,
    listen: '127.0.0.1',
    apiPort: 0,
    brokerPort: 0,
    bus,
    ...(storeUrl ? { storeUrl } : {}),
  };
  const child = spawn(process.execPath, [...NODE_FLAGS, HUB_MAIN, JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RAMPART_LOG_LEVEL: 'warn' },
  });
  const started = new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.stderr!.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-2_000);
    });
    child.once('exit', (code) => reject(new Error(`hub exited ${code}: ${err}`)));
  });
  const line = await started.catch((e: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const j = JSON.parse(line) as { url: string; adminToken: string; publicKey: string; bus: { url: string } };
  return { child, dir, url: j.url, adminToken: j.adminToken, publicKey: j.publicKey, busUrl: j.bus.url };
}

async function stopHub(h: HubChild): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  const exited = new Promise((r) => h.child.once('exit', r));
  h.child.kill('SIGTERM');
  const t = setTimeout(() => h.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/** Resident memory of a process, in KiB. */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** The process listening on a local TCP port (a private Mosquitto). */
function pidListening(port: number): number {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(out);
  if (!m) throw new Error(`no process listens on port ${port}`);
  return Number(m[1]);
}

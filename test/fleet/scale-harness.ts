import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { stringify } from 'yaml';
import { natsStreams } from '../../src/bus/create.js';
import { NatsTransport } from '../../src/bus/nats.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { prepareHubDir } from '../../src/hub/hub-files.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/types.js';
import { freePort } from '../helpers/free-port.js';
import { createLan, type Host, type Lan } from '../helpers/netns.js';
import { MAIN, Proc, profileFlags, removeDir, tempDir } from './harness.js';

/**
 * A fleet for the scale-out fault tests: hubs and agents are the real CLI in the root namespace
 * (where the shared PostgreSQL, NATS and RabbitMQ listen on 127.0.0.1), and each agent enforces
 * in nftables inside a namespace of its own (`firewall.exec: [ip, netns, exec, NS]`). Each starts
 * with the node flags the `rampart` command and the systemd units give it (cli/node-flags.ts).
 */
export interface ScaleFleetOptions {
  fleet: string;
  /** The `bus:` section every hub and agent gets. */
  bus: Record<string, unknown>;
  /** postgres:// for several hubs; default SQLite in the first hub's folder. */
  storeUrl?: string;
  hubs: number;
  agents: number;
  /** Each agent follows `logFile(i)` with the built-in rules (its reports reach the hubs). */
  watch?: boolean;
  /**
   * Where agent i reaches the bus and the hubs, when not directly (a relay the test can cut).
   * Called once the hubs run, with their URLs.
   */
  agentRoute?: (i: number, hubUrls: string[]) => Promise<{ bus?: Record<string, unknown>; hub?: string }>;
  /** How long each hub and agent may take to start, default 30 s (a bench on a loaded machine gives more). */
  startTimeoutMs?: number;
  /** Each agent serves /metrics on 127.0.0.1:`metricsPorts[i]` (a bench's witness). */
  metrics?: boolean;
}

export interface HubProc {
  proc: Proc;
  url: string;
  dir: string;
}

export class ScaleFleet {
  readonly hubs: HubProc[] = [];
  readonly agents: Proc[] = [];
  readonly dirs: string[] = [];
  /** Agent i's metrics port, with `metrics`. */
  readonly metricsPorts: number[] = [];
  lan!: Lan;
  adminToken = '';
  private readonly hubPorts: number[] = [];

  constructor(readonly o: ScaleFleetOptions) {}

  private get startMs(): number {
    return this.o.startTimeoutMs ?? 30_000;
  }

  /** Starts every hub at once, then every agent at once. */
  async start(): Promise<void> {
    this.lan = await createLan(this.o.agents, 'scl');
    await Promise.all(Array.from({ length: this.o.hubs }, (_, i) => this.startHub(i)));
    await Promise.all(Array.from({ length: this.o.agents }, (_, i) => this.startAgent(i)));
  }

  /**
   * Makes every hub's data folder. The hubs share one key and admin token (what agents pin): made
   * here for the first with the hub's own code and copied to the others, so no hub waits for one.
   */
  private prepareHubDirs(): void {
    for (let i = 0; i < this.o.hubs; i++) {
      const dir = tempDir(`scale-hub${i}`);
      this.dirs[i] = dir;
      if (i === 0) prepareHubDir(dir);
      else {
        mkdirSync(join(dir, 'hub'), { recursive: true, mode: 0o700 });
        for (const f of ['hub.key', 'admin.token'])
          copyFileSync(join(this.dirs[0]!, 'hub', f), join(dir, 'hub', f));
      }
      writeFileSync(join(dir, 'rampart.yaml'), stringify({ fleet: this.o.fleet, bus: this.o.bus }));
    }
    this.adminToken = readFileSync(join(this.dirs[0]!, 'hub', 'admin.token'), 'utf8').trim();
  }

  /** Starts hub i (again, after a kill: same folder and port). */
  async startHub(i: number): Promise<HubProc> {
    if (!this.dirs[i]) this.prepareHubDirs();
    const dir = this.dirs[i]!;
    const args = ['hub', '--data', dir, '--config', join(dir, 'rampart.yaml'), '--listen', '127.0.0.1'];
    // Same port after a restart, so the agents' hub lists stay right.
    args.push('--port', String(this.hubPorts[i] ?? 0));
    if (this.o.storeUrl) args.push('--store', this.o.storeUrl);
    const proc = new Proc(
      spawn(process.execPath, [...NODE_FLAGS, ...profileFlags('hub'), MAIN, ...args], {
        env: { ...process.env, RAMPART_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let started: Record<string, unknown>;
    try {
      started = await proc.waitFor((l) => l.msg === 'hub started', this.startMs, `hub${i} started`);
    } catch (err) {
      // Not in `hubs` yet, so stop() would not reach it.
      await proc.stop();
      throw err;
    }
    const url = started.url as string;
    this.hubPorts[i] = Number(new URL(url).port);
    const h = { proc, url, dir };
    this.hubs[i] = h;
    return h;
  }

  hubList(): string {
    return this.hubs.map((h) => h.url).join(',');
  }

  async api(
    hub: number,
    method: string,
    path: string,
    body?: unknown,
    // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field by the tests
  ): Promise<{ status: number; json: any }> {
    const res = await fetch(new URL(path, this.hubs[hub]!.url), {
      method,
      headers: {
        authorization: `Bearer ${this.adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : {} };
  }

  /** Enrols agent i (real `rampart join`) and starts it (real `rampart agent`) with `env` added. */
  async startAgent(i: number, env: Record<string, string> = {}): Promise<Proc> {
    let dir = this.dirs[this.o.hubs + i];
    if (!dir) {
      dir = tempDir(`scale-agent${i}`);
      this.dirs[this.o.hubs + i] = dir;
      const name = `agent${i}`;
      const added = await this.api(0, 'POST', '/v1/nodes', { name });
      if (added.status !== 201) throw new Error(`nodes add: ${JSON.stringify(added.json)}`);
      await run([MAIN, 'join', added.json.token, '--data', dir, '--hub', this.hubList()]);
      const ns = this.lan.hosts[i]!.ns;
      const route =
        (await this.o.agentRoute?.(
          i,
          this.hubs.map((h) => h.url),
        )) ?? {};
      if (this.o.watch) writeFileSync(this.logFile(i), '');
      if (this.o.metrics) this.metricsPorts[i] = await freePort();
      writeFileSync(
        join(dir, 'rampart.yaml'),
        stringify({
          // On the embedded broker, `rampart join` wrote the hub's broker URL for the agent.
          ...(route.bus || this.o.bus.type !== 'embedded' ? { bus: route.bus ?? this.o.bus } : {}),
          firewall: { backend: 'nftables', exec: ['ip', 'netns', 'exec', ns] },
          agent: {
            hub: route.hub ?? this.hubList(),
            heartbeatInterval: 5,
            ...(this.o.watch ? { watch: [this.logFile(i)] } : {}),
            ...(this.o.metrics ? { metrics: { listen: `127.0.0.1:${this.metricsPorts[i]}` } } : {}),
          },
        }),
      );
    }
    const proc = new Proc(
      spawn(
        process.execPath,
        [
          ...NODE_FLAGS,
          ...profileFlags('agent'),
          MAIN,
          'agent',
          '--data',
          dir,
          '--config',
          join(dir, 'rampart.yaml'),
        ],
        {
          env: { ...process.env, RAMPART_LOG_LEVEL: process.env.FLEET_LOG_LEVEL ?? 'info', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      ),
    );
    // Kept before the waits: an agent that starts too slowly must still be stopped by stop().
    this.agents[i] = proc;
    await proc.waitFor((l) => l.msg === 'agent running', this.startMs, `agent${i} running`);
    await proc.waitFor((l) => l.msg === 'bus' && l.status === 'up', this.startMs, `agent${i} bus up`);
    return proc;
  }

  /** The auth log agent i follows (with `watch`). */
  logFile(i: number): string {
    return join(this.dirs[this.o.hubs + i]!, 'auth.log');
  }

  /** Opens the hubs' store directly (the log is the truth the kernels are compared with). */
  async openStore(): Promise<Store> {
    if (this.o.storeUrl) return PostgresStore.open({ url: this.o.storeUrl });
    return new SqliteStore(join(this.hubs[0]!.dir, 'hub', 'hub.db'));
  }

  /**
   * Every element of an agent's nftables sets of `families` (addresses, and ranges such as sshd's
   * /64s); IPv6 only by default, where the fault tests put their bans.
   */
  kernelSet(i: number, families: Array<4 | 6> = [6]): Promise<Set<string>> {
    return nftElements(this.lan.hosts[i]!, families);
  }

  /**
   * Waits until every agent's kernel set equals the bans in force in the log, then checks the log
   * itself (seq 1..head, no gap, no duplicate); prints how long convergence took as a JSON line
   * labelled `label` (unless `quiet`). Throws with the difference otherwise.
   */
  async expectConverged(
    label: string,
    timeoutMs = 120_000,
    opts: { families?: Array<4 | 6>; quiet?: boolean } = {},
  ): Promise<{ bans: number; head: number; ms: number }> {
    const families = opts.families ?? [6];
    const t0 = Date.now();
    const store = await this.openStore();
    try {
      let diff = '';
      for (;;) {
        // Read each round: bans with short durations expire while the agents converge.
        const want = new Set(
          (await store.active(Date.now()))
            .filter((d) => families.includes(d.family as 4 | 6))
            .map((d) => d.target),
        );
        diff = '';
        for (let i = 0; i < this.agents.length; i++) {
          const got = await this.kernelSet(i, families);
          const missing = [...want].filter((x) => !got.has(x));
          const extra = [...got].filter((x) => !want.has(x));
          if (missing.length || extra.length) {
            diff += `agent${i}: ${missing.length} missing (${missing.slice(0, 3).join(' ')}), ${extra.length} extra (${extra.slice(0, 3).join(' ')})\n`;
          }
        }
        if (!diff) {
          const ms = Date.now() - t0;
          const head = await expectGapFreeLog(store);
          const r = { bans: want.size, head, ms };
          // The figure the issue asks for: how long after the fault's end every kernel matched.
          if (!opts.quiet)
            console.log(JSON.stringify({ converged: label, agents: this.agents.length, ...r }));
          return r;
        }
        if (Date.now() - t0 > timeoutMs) throw new Error(`kernel sets differ from the log:\n${diff}`);
        // Each round reads every kernel set: a short pause keeps that from crowding the agents.
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await store.close();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a?.stop()));
    await Promise.all(this.hubs.map((h) => h?.proc.stop()));
    await this.lan?.destroy();
    for (const d of this.dirs) if (d) removeDir(d);
  }
}

/** Every element of rampart's nftables sets of `families` in `host` (addresses, and ranges as CIDR text). */
export async function nftElements(host: Host, families: Array<4 | 6> = [6]): Promise<Set<string>> {
  const set = new Set<string>();
  for (const name of families.flatMap((f) => [`blocklist_v${f}`, `blocklist_v${f}_net`])) {
    const out = await host.exec('nft', ['-j', 'list', 'set', 'inet', 'rampart', name], { timeoutMs: 60_000 });
    // biome-ignore lint/suspicious/noExplicitAny: nft's JSON elements come in several shapes, handled below
    for (const item of JSON.parse(out).nftables as Array<Record<string, any>>) {
      for (const e of item.set?.elem ?? []) {
        const v = typeof e === 'string' ? e : (e.elem?.val ?? e.prefix ?? e);
        if (typeof v === 'string') set.add(v);
        else if (v?.prefix) set.add(`${v.prefix.addr}/${v.prefix.len}`);
        else if (v?.addr) set.add(`${v.addr}/${v.len}`);
      }
    }
  }
  return set;
}

/** Checks the log as it ended up: seq 1..head, none missing, none twice. Resolves with head. */
export async function expectGapFreeLog(store: Store): Promise<number> {
  const log = await store.since(0, 10_000_000);
  const head = await store.head();
  const seqs = log.map((d) => d.seq);
  if (seqs.some((s, k) => s !== k + 1) || seqs.length !== head) {
    throw new Error(`log seq is not 1..${head} without gaps (got ${seqs.length} entries)`);
  }
  return head;
}

/**
 * Loads bans through the hubs' bulk API, `parallel` requests in flight, moving to the next hub
 * when one does not answer. `fault(chunk)` runs before chunk `chunk` is sent. Every chunk is
 * retried until a hub acknowledged it, so every address must end up banned (for `duration`,
 * default 1h).
 */
export async function loadBans(
  f: ScaleFleet,
  addrs: string[],
  opts: {
    chunk?: number;
    parallel?: number;
    duration?: string;
    fault?: (chunk: number) => Promise<void>;
  } = {},
): Promise<void> {
  const size = opts.chunk ?? 500;
  const chunks: string[][] = [];
  for (let i = 0; i < addrs.length; i += size) chunks.push(addrs.slice(i, i + size));
  let next = 0;
  let hub = 0;
  const worker = async () => {
    for (;;) {
      const k = next++;
      if (k >= chunks.length) return;
      await opts.fault?.(k);
      const body = {
        decisions: chunks[k]!.map((target) => ({ target, duration: opts.duration ?? '1h', reason: 'load' })),
      };
      for (let attempt = 0; ; attempt++) {
        const h = hub % f.hubs.length;
        const r = await f.api(h, 'POST', '/v1/decisions/bulk', body).catch(() => undefined);
        if (r && r.status === 200) break;
        hub++;
        if (attempt > 200) throw new Error(`chunk ${k} never acknowledged`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 2 }, worker));
}

/** Removes a fleet's JetStream streams (and with them every durable consumer) from `servers`. */
export async function deleteNatsStreams(servers: string[], fleet: string): Promise<void> {
  const t = new NatsTransport({
    servers,
    clientId: `cleanup-${fleet}`,
    clean: true,
    streams: natsStreams(fleet),
  });
  await t.connect();
  await t.deleteStreams();
  await t.close();
}

/**
 * For a fault file's describe block: `cleanup` runs (last first) after each test, even a failed
 * one; `fleetName()` is unique per call (topics, streams, queues of their own).
 */
export function faultCleanup(): { cleanup: Array<() => Promise<unknown>>; fleetName: () => string } {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  return { cleanup, fleetName: () => `s${randomBytes(4).toString('hex')}` };
}

/** `n` IPv6 documentation addresses (2001:db8::/32), distinct per `base`. */
export function v6Addrs(n: number, base = 0): string[] {
  return Array.from({ length: n }, (_, i) => {
    const k = base + i;
    return `2001:db8:${(k >> 16).toString(16)}:${(k & 0xffff).toString(16)}::1`;
  });
}

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${code}\n${out}`)),
    );
  });
}

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { appendLog, sshdFailures } from '../test/fleet/harness.js';
import { deleteNatsStreams, ScaleFleet, v6Addrs } from '../test/fleet/scale-harness.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { createTestDatabase } from '../test/helpers/postgres.js';
import { createTestVhost } from '../test/helpers/rabbitmq.js';
import type { Emit } from './list.js';
import { cpuMs, cpuMsByName } from './proc-stats.js';

/*
 * The end-to-end half of `npm run bench -- transports`: every transport with one hub (the
 * embedded broker, a Mosquitto and a RabbitMQ vhost the bench starts and removes, the shared NATS
 * JetStream), then one hub against two hubs on one PostgreSQL database over NATS (reports on a
 * work queue, so with two hubs each takes its share). Hubs and agents are the real CLI (the
 * scale-out fault tests' fleet), every agent enforcing in nftables in a namespace of its own and
 * given every hub's URL.
 *
 * Latency: sshd failure lines appended to one agent's log (a different agent each time) → the
 * address in the kernel set of every other agent (`nft monitor` in each namespace, measured at
 * under 0.05 ms of CPU per event). Throughput: bulk bans posted round robin over the hubs → every
 * agent's kernel at the head seq (its metrics). Then every agent's kernel sets are read back
 * element by element and compared with the log, and the log's seq checked for gaps and doubles.
 *
 * Knobs: TRANSPORTS_HUBS_AGENTS (10), TRANSPORTS_HUBS_SAMPLES (100), TRANSPORTS_HUBS_DECISIONS
 * (20,000; 0 skips throughput), TRANSPORTS_HUBS_WARMUP (10,000 before them; 0 for none),
 * TRANSPORTS_HUBS_CHUNK (2,000), TRANSPORTS_HUBS (see topologies()).
 */
const NATS = process.env.TRANSPORTS_HUBS_NATS ?? 'nats://127.0.0.1:4222';
const GOAL_P99_MS = 50;
const GOAL_PER_SECOND = 10_000;
/**
 * Bans per bulk request; chunks go round robin over the hubs, `2 × hubs` in flight. An import of
 * a list sends big requests (the embedded bench sends 10,000); 250 made the figure one of
 * per-request overhead (two PostgreSQL round trips and a bus publish each). A machine so loaded
 * that a request nears the API client's 60 s wants TRANSPORTS_HUBS_CHUNK=250.
 */
const CHUNK = Number(process.env.TRANSPORTS_HUBS_CHUNK ?? 2_000);
/**
 * Bans loaded before the timed ones, through the same path, and printed apart (`firstLoad`): the
 * first bulk load into a fleet that just started runs its processes' bulk path in V8's interpreter
 * and baseline code until it is hot, at about twice the CPU per decision of the loads after it
 * (ADR 0078). A fleet that takes a flood has been running. Like agent-intake's warm-up round and
 * the latency half's first detection per agent (coldFirstMs), it is shown, not hidden.
 */
const WARMUP = Number(process.env.TRANSPORTS_HUBS_WARMUP ?? 10_000);
/**
 * The timed loads, one after the other on the same fleet (TRANSPORTS_HUBS_ADDRESSES, a comma list):
 * `counting` addresses count up (2001:db8:0:1::1, 2001:db8:0:2::1, …), as a sorted feed is
 * imported and as this bench loaded before 7 December; `scattered` ones are spread over
 * 2001:db8::/32, as an unsorted list's or a flood's are. Counting addresses land next to each other
 * in every index keyed by address (the agents' SQLite state, the hub's, PostgreSQL's), so those
 * writes cost less (ADR 0079). The first one listed gives the row's `decisionsPerSecond`.
 */
const ORDERS = (process.env.TRANSPORTS_HUBS_ADDRESSES ?? 'counting,scattered').split(',').map((o) => {
  if (o !== 'counting' && o !== 'scattered')
    throw new Error(`TRANSPORTS_HUBS_ADDRESSES: "${o}" is not counting or scattered`);
  return o;
});

/**
 * One end-to-end run: the bus, how many hubs, and the store (SQLite in the hub's folder for one
 * hub; PostgreSQL, which several hubs need).
 */
interface Topology {
  bus: 'embedded' | 'mosquitto' | 'rabbitmq' | 'nats';
  hubs: number;
  store: 'sqlite' | 'postgres';
}

/**
 * TRANSPORTS_HUBS: a comma list of `embedded`, `mosquitto`, `rabbitmq`, `nats` (one hub on
 * SQLite) and numbers N (N hubs on PostgreSQL over NATS JetStream); `0` skips this half.
 */
function topologies(spec: string): Topology[] {
  const out: Topology[] = [];
  for (const item of spec.split(',').map((x) => x.trim())) {
    if (item === '' || item === '0') continue;
    if (/^\d+$/.test(item)) out.push({ bus: 'nats', hubs: Number(item), store: 'postgres' });
    else if (['embedded', 'mosquitto', 'rabbitmq', 'nats'].includes(item))
      out.push({ bus: item as Topology['bus'], hubs: 1, store: 'sqlite' });
    else
      throw new Error(
        `TRANSPORTS_HUBS: "${item}" is not embedded, mosquitto, rabbitmq, nats or a number of hubs`,
      );
  }
  return out;
}

/** Each timed load's decisions/s by its addresses (`countingDecisionsPerSecond`, …). */
function loadRates(row: Record<string, unknown>): Record<string, unknown> {
  const loads = (row.loads ?? []) as Array<{ addresses: string; decisionsPerSecond?: number }>;
  return Object.fromEntries(loads.map((l) => [`${l.addresses}DecisionsPerSecond`, l.decisionsPerSecond]));
}

const label = (t: Topology) => `${t.bus}, ${t.hubs} hub${t.hubs > 1 ? 's' : ''} on ${t.store}`;

export default async function transportsHubs(emit: Emit): Promise<void> {
  const agents = Number(process.env.TRANSPORTS_HUBS_AGENTS ?? 10);
  // 100 by default: the p99 of 40 samples is their slowest (see bench/propagation.ts).
  const samples = Math.min(250, Number(process.env.TRANSPORTS_HUBS_SAMPLES ?? 100));
  const decisions = Number(process.env.TRANSPORTS_HUBS_DECISIONS ?? 20_000);
  const rows: Array<Record<string, unknown>> = [];
  for (const t of topologies(process.env.TRANSPORTS_HUBS ?? 'embedded,mosquitto,rabbitmq,nats,1,2')) {
    try {
      const row = await topology(t, agents, samples, decisions);
      rows.push(row);
      emit(row);
    } catch (err) {
      emit({ bench: 'transports-hubs', topology: label(t), error: (err as Error).message });
    }
  }
  const ratio = (a: Record<string, unknown>, b: Record<string, unknown>, k: string) =>
    typeof a[k] === 'number' && typeof b[k] === 'number'
      ? +((b[k] as number) / (a[k] as number)).toFixed(2)
      : null;
  // Every transport side by side with the embedded broker, end to end.
  const embedded = rows.find((r) => r.bus === 'embedded');
  if (embedded)
    emit({
      bench: 'transports-end-to-end-comparison',
      figure: 'each topology over the embedded broker (one hub on SQLite), same agents and load',
      agents,
      rows: rows.map((r) => ({
        topology: r.topology,
        p99Ms: r.p99Ms,
        decisionsPerSecond: r.decisionsPerSecond,
        firstLoadDecisionsPerSecond: (r.firstLoad as { decisionsPerSecond?: number } | undefined)
          ?.decisionsPerSecond,
        ...loadRates(r),
        p99VsEmbedded: ratio(embedded, r, 'p99Ms'),
        rateVsEmbedded: ratio(embedded, r, 'decisionsPerSecond'),
      })),
      goal: `p99 <= ${GOAL_P99_MS} ms with 20 agents; >= ${GOAL_PER_SECOND} decisions/s end to end, nothing lost`,
    });
  const one = rows.find((r) => r.store === 'postgres' && r.hubs === 1);
  const two = rows.find((r) => r.store === 'postgres' && r.hubs === 2);
  if (one && two) {
    emit({
      bench: 'transports-hubs-comparison',
      figure: 'two hubs on PostgreSQL over one hub on PostgreSQL, same bus (NATS JetStream), same agents',
      agents,
      oneHubP99Ms: one.p99Ms,
      twoHubsP99Ms: two.p99Ms,
      p99TwoOverOne: ratio(one, two, 'p99Ms'),
      oneHubDecisionsPerSecond: one.decisionsPerSecond,
      twoHubsDecisionsPerSecond: two.decisionsPerSecond,
      rateTwoOverOne: ratio(one, two, 'decisionsPerSecond'),
      oneHubLoads: loadRates(one),
      twoHubsLoads: loadRates(two),
      goal: `p99 <= ${GOAL_P99_MS} ms with 20 agents; >= ${GOAL_PER_SECOND} decisions/s end to end, nothing lost`,
    });
  }
}

/** The `bus:` section for a topology, and what to remove afterwards. */
async function busFor(
  t: Topology,
  fleetName: string,
): Promise<{ bus: Record<string, unknown>; cleanup: () => Promise<void> }> {
  switch (t.bus) {
    case 'embedded':
      // Any free port for the hub's broker: `rampart join` tells each agent where it is.
      return { bus: { type: 'embedded', port: 0 }, cleanup: async () => {} };
    case 'mosquitto': {
      const m = await startMosquitto();
      return {
        bus: { type: 'mqtt', url: `mqtt://127.0.0.1:${m.port}`, username: m.username, password: m.password },
        cleanup: () => m.stop(),
      };
    }
    case 'rabbitmq': {
      const vh = await createTestVhost();
      return { bus: { type: 'amqp', url: vh.url() }, cleanup: () => vh.remove() };
    }
    case 'nats':
      return {
        bus: { type: 'nats', url: NATS },
        cleanup: () => deleteNatsStreams([NATS], fleetName).catch(() => undefined),
      };
  }
}

async function topology(
  t: Topology,
  agents: number,
  samples: number,
  decisions: number,
): Promise<Record<string, unknown>> {
  const db = t.store === 'postgres' ? await createTestDatabase() : undefined;
  const fleetName = `tb${randomBytes(4).toString('hex')}`;
  const { bus, cleanup } = await busFor(t, fleetName);
  const { hubs } = t;
  const f = new ScaleFleet({
    fleet: fleetName,
    bus,
    ...(db ? { storeUrl: db.url } : {}),
    hubs,
    agents,
    watch: true,
    // The throughput witness reads each agent's kernel seq there.
    metrics: true,
    // Ten agents starting at once on a shared 2-core machine at a load of 40 took over 30 s.
    startTimeoutMs: 120_000,
  });
  try {
    await f.start();
    const lat = await latency(f, samples);
    const first =
      decisions > 0 && WARMUP > 0 ? await throughput(f, WARMUP, hubs, FIRST_LOAD_BASE) : undefined;
    const loads: Array<Record<string, unknown>> = [];
    for (const order of decisions > 0 ? ORDERS : [])
      loads.push({ addresses: order, ...(await throughput(f, decisions, hubs, 0x10000 * hubs, order)) });
    const thr = loads[0] ?? {};
    // Nothing lost: every agent's kernel sets (v4 and v6) equal the bans in the log, element by
    // element, and the log's seq runs 1..head without a gap or a double (throws otherwise).
    const check = await f.expectConverged('transports-hubs', 60_000, { families: [4, 6], quiet: true });
    const reports = await Promise.all(f.hubs.map((_, i) => reportsTaken(f, i)));
    const envelopes = await Promise.all(f.hubs.map((_, i) => envelopesSealed(f, i)));
    return {
      bench: 'transports-hubs',
      figure: `propagation (sshd lines on one agent -> element in every other agent's kernel set) and end-to-end decisions/s (bulk API -> every agent's kernel), ${label(t)}`,
      topology: label(t),
      bus: t.bus,
      // The broker's settings that matter here, as docs/config.md asks operators for them.
      ...(t.bus === 'mosquitto' ? { broker: 'private Mosquitto 2, set_tcp_nodelay true' } : {}),
      store: t.store,
      hubs,
      agents,
      ...lat,
      ...thr,
      // Every timed load, the first one's figures above included.
      ...(loads.length > 1 ? { loads } : {}),
      // The first load (WARMUP), on the processes as they started: not part of the figure above.
      ...(first
        ? {
            firstLoad: {
              decisions: first.decisions,
              decisionsPerSecond: first.decisionsPerSecond,
              endToEndSeconds: first.endToEndSeconds,
              hubCpuUsPerDecision: first.hubCpuUsPerDecision,
              agentCpuUsPerDecision: first.agentCpuUsPerDecision,
            },
          }
        : {}),
      lost: 0,
      kernelCheck: `${agents} agents x ${check.bans} bans read back = log; seq 1..${check.head} gap-free`,
      // Which hub decided the agents' reports: with two hubs, both must have taken some.
      reportsPerHub: reports,
      // Envelopes each hub sealed, by kind: `decisions-packed` means the agents read packed runs.
      envelopesPerHub: envelopes,
      goal: `p99 <= ${GOAL_P99_MS} ms with 20 agents; >= ${GOAL_PER_SECOND} decisions/s end to end, nothing lost`,
      goalP99Ms: GOAL_P99_MS,
      goalPerSecond: GOAL_PER_SECOND,
    };
  } finally {
    await f.stop().catch(() => undefined);
    await cleanup().catch(() => undefined);
    await db?.drop().catch(() => undefined);
  }
}

/** Follows `nft monitor` in agent i's namespace; calls back with each element added to a set. */
function monitor(f: ScaleFleet, i: number, onAdd: (addr: string, at: number) => void): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', f.lan.hosts[i]!.ns, 'nft', 'monitor', 'new', 'elements'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    const at = performance.now();
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /add element inet rampart \S+ \{ (.*) \}/.exec(line);
      if (!m) continue;
      for (const el of m[1]!.split(',')) onAdd(el.trim().split(' ')[0]!, at);
    }
  });
  return child;
}

/** Until every monitor printed its first line is not knowable; give them a moment to subscribe. */
const monitorsReady = () => new Promise((r) => setTimeout(r, 1_000));

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function latency(f: ScaleFleet, samples: number): Promise<Record<string, unknown>> {
  const n = f.agents.length;
  const seen = new Map<string, Map<number, number>>();
  const monitors = f.agents.map((_, i) =>
    monitor(f, i, (addr, at) => {
      const m = seen.get(addr);
      if (m && !m.has(i)) m.set(i, at);
    }),
  );
  await monitorsReady();
  /** Failing lines for `addr` on agent `from`; the slowest other kernel, or undefined past 5 s. */
  const detect = async (from: number, addr: string): Promise<number | undefined> => {
    seen.set(addr, new Map());
    const t0 = performance.now();
    appendLog(f.logFile(from), sshdFailures(addr, 5, `agent${from}`));
    const others = () => [...seen.get(addr)!.keys()].filter((a) => a !== from).length;
    const end = t0 + 5_000;
    while (others() < n - 1 && performance.now() < end) await new Promise((r) => setTimeout(r, 2));
    const times = [...seen.get(addr)!].filter(([a]) => a !== from).map(([, t]) => t - t0);
    await new Promise((r) => setTimeout(r, 100));
    return times.length < n - 1 ? undefined : Math.max(...times);
  };
  const worst: number[] = [];
  const cold: Array<number | null> = [];
  let missed = 0;
  try {
    // The samples rotate over the agents, so each agent's first detection (its whole path run
    // for the first time) would be one of the timed ones: one per agent first, printed apart, as
    // the propagation bench does with its one reporting agent.
    for (let k = 0; k < Math.min(n, 50); k++) {
      const one = await detect(k, `192.0.2.${201 + k}`);
      cold.push(one === undefined ? null : +one.toFixed(1));
    }
    for (let k = 0; k < samples; k++) {
      const one = await detect(k % n, `203.0.113.${k + 1}`);
      if (one === undefined) missed++;
      else worst.push(one);
    }
  } finally {
    for (const m of monitors) m.kill('SIGKILL');
  }
  worst.sort((a, b) => a - b);
  const ms = (v: number | undefined) => (v === undefined ? null : +v.toFixed(1));
  return {
    samples,
    p50Ms: ms(worst.length ? pct(worst, 50) : undefined),
    p99Ms: ms(worst.length ? pct(worst, 99) : undefined),
    maxMs: ms(worst.at(-1)),
    // With 40 samples p99 is the slowest one: the whole sorted list shows whether it stands alone.
    sortedMs: worst.map((v) => ms(v)),
    missedWithin5s: missed,
    // Each agent's first detection after the fleet started (untimed warm-up, above).
    coldFirstMs: cold,
  };
}

/**
 * `n` addresses 2001:db8:X:Y::2 for k = base..base+n-1 (below 2^24), each k multiplied by an odd
 * constant modulo 2^24 first: a bijection, so distinct k give distinct addresses, spread over the
 * whole range instead of side by side. `::2`, where counting ones end in `::1`: no load ever bans
 * an address another one banned.
 */
function scatteredV6Addrs(n: number, base: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const k = Math.imul(base + i, 0x9e3779b1) & 0xffffff;
    return `2001:db8:${(k >> 16).toString(16)}:${(k & 0xffff).toString(16)}::2`;
  });
}

/** Where the first load's k start: clear of the timed load's (below 0x400000 for 100,000 bans). */
const FIRST_LOAD_BASE = 0x400000;

/**
 * Bulk bans (`count` addresses from v6Addrs `base`) round robin over the hubs until every agent's
 * kernel holds the log's head. The clock
 * stops when the last agent's `rampart_agent_kernel_seq` (the seq its last kernel commit took)
 * reaches the highest head a bulk answer gave: ten `nft monitor`s printing 20,000 elements each
 * were a load on the two cores larger than some of what they measured. Loss is checked after,
 * element by element (`expectConverged`).
 */
async function throughput(
  f: ScaleFleet,
  count: number,
  hubs: number,
  base: number,
  order: 'counting' | 'scattered' = 'counting',
): Promise<Record<string, unknown>> {
  const addrs = order === 'scattered' ? scatteredV6Addrs(count, base) : v6Addrs(count, base);
  const chunks: string[][] = [];
  for (let i = 0; i < addrs.length; i += CHUNK) chunks.push(addrs.slice(i, i + CHUNK));
  const catchUps0 = await catchUps(f);
  const cpu0 = processCpuMs(f);
  const servers0 = cpuMsByName(SERVERS);
  const t0 = performance.now();
  let head = 0;
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < chunks.length; k = next++) {
      const body = { decisions: chunks[k]!.map((target) => ({ target, duration: '1h', reason: 'bench' })) };
      const r = await f.api(k % hubs, 'POST', '/v1/decisions/bulk', body);
      if (r.status !== 200 || r.json.added !== chunks[k]!.length)
        throw new Error(
          `bulk chunk ${k} on hub ${k % hubs}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`,
        );
      head = Math.max(head, r.json.head as number);
    }
  };
  await Promise.all(Array.from({ length: 2 * hubs }, worker));
  const postedAt = performance.now();
  const lastAt = await kernelsAt(f, head, postedAt + 120_000);
  if (lastAt === undefined) throw new Error(`agents' kernels short of seq ${head} after 120 s`);
  const cpu = processCpuMs(f);
  const servers = cpuMsByName(SERVERS);
  const seconds = (lastAt - t0) / 1000;
  return {
    decisions: count,
    bansPerRequest: CHUNK,
    apiDecisionsPerSecond: Math.round(count / ((postedAt - t0) / 1000)),
    endToEndSeconds: +seconds.toFixed(2),
    decisionsPerSecond: Math.round(count / seconds),
    // Noise-resistant: CPU per decision of each hub and of one agent (mean), from /proc.
    hubCpuUsPerDecision: cpu.hubs.map((ms, i) => Math.round(((ms - cpu0.hubs[i]!) * 1000) / count)),
    agentCpuUsPerDecision: Math.round(((cpu.agents - cpu0.agents) * 1000) / count / f.agents.length),
    // The servers' share (every process of that name on the machine, so a busy neighbour shows).
    serverCpuUsPerDecision: Object.fromEntries(
      Object.entries(servers)
        .map(([k, ms]) => [k, Math.round(((ms - servers0[k]!) * 1000) / count)])
        .filter(([, us]) => (us as number) > 0),
    ),
    // Agents that read the log over HTTP during the load (a hole the bus did not fill in time).
    agentCatchUps: (await catchUps(f)) - catchUps0,
  };
}

/** Processes whose CPU is the topology's, not rampart's: the store and the brokers. */
const SERVERS = ['postgres', 'nats-server', 'mosquitto', 'beam.smp'] as const;

/** HTTP catch-ups of every agent so far. */
async function catchUps(f: ScaleFleet): Promise<number> {
  const each = await Promise.all(f.agents.map((_, i) => agentMetric(f, i, 'rampart_agent_catch_ups_total')));
  return each.reduce((a, b) => a + b, 0);
}

/** One value of agent i's /metrics. */
async function agentMetric(f: ScaleFleet, i: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${f.metricsPorts[i]}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : -1;
}

/**
 * When the last agent's kernel reached `seq`, or undefined past `until` (called once the last bulk
 * answer is in). Polled every 20 ms once every agent is within 2,000 decisions of it, every 100 ms
 * before (at least 0.1 s of work away at this fleet's rate): a scrape renders the agent's whole
 * registry, and ten agents scraped every 25 ms spent about 3 % of their CPU in that window on
 * answering them (`--cpu-prof`), on the cores the fleet shares.
 */
async function kernelsAt(f: ScaleFleet, seq: number, until: number): Promise<number | undefined> {
  const left = new Set(f.agents.map((_, i) => i));
  while (performance.now() < until) {
    let behind = 0;
    for (const i of [...left]) {
      const at = await agentMetric(f, i, 'rampart_agent_kernel_seq').catch(() => -1);
      if (at >= seq) left.delete(i);
      else behind = Math.max(behind, at < 0 ? seq : seq - at);
    }
    if (left.size === 0) return performance.now();
    await new Promise((r) => setTimeout(r, behind > 2_000 ? 100 : 20));
  }
  return undefined;
}

/** CPU (user + system, ms) of every hub and of all agents together. */
function processCpuMs(f: ScaleFleet): { hubs: number[]; agents: number } {
  return {
    hubs: f.hubs.map((h) => cpuMs([h.proc.child.pid!])),
    agents: cpuMs(f.agents.map((a) => a.child.pid!)),
  };
}

/** Envelopes hub i sealed for the bus, by kind (its `rampart_hub_decision_envelopes_total`). */
async function envelopesSealed(f: ScaleFleet, i: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const line of (await hubMetrics(f, i)).split('\n')) {
    const m = /^rampart_hub_decision_envelopes_total\{kind="([^"]+)"\} (\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Hub i's /metrics text. */
async function hubMetrics(f: ScaleFleet, i: number): Promise<string> {
  const res = await fetch(new URL('/metrics', f.hubs[i]!.url), {
    headers: { authorization: `Bearer ${f.adminToken}` },
  });
  return res.text();
}

/** Reports hub i decided (its `rampart_hub_reports_total`, every result summed). */
async function reportsTaken(f: ScaleFleet, i: number): Promise<number> {
  let sum = 0;
  for (const line of (await hubMetrics(f, i)).split('\n'))
    if (line.startsWith('rampart_hub_reports_total')) sum += Number(line.split(' ').at(-1));
  return sum;
}

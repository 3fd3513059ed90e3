/**
 * Fleet propagation, end to end with real processes: a hub and N agents, each in its own network
 * namespace, every one the real CLI with nftables. Latency runs from a failing sshd line appended
 * to agent 1's log to the address being in the kernel set of every other agent (seen by
 * `nft monitor` in each namespace); throughput is bans posted to the hub API until all are in every
 * agent's kernel set (timed by each agent's `rampart_agent_kernel_seq` metric, the seq its last
 * commit took to the kernel, so no per-element printer competes for the CPU; agents log at info as
 * in production), then checked element by element in
 * each kernel set (no loss), through the bulk endpoint and, for comparison, one POST per ban.
 * CrowdSec's firewall bouncer polls its API every 10 s by default, so its propagation is up to
 * ~11 s: printed as a ratio.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  appendLog,
  cli,
  createLog,
  type Proc,
  rampart,
  removeDir,
  sshdFailures,
  tempDir,
} from '../test/fleet/harness.js';
import { createLan, type Host, type Lan } from '../test/helpers/netns.js';
import type { Emit } from './list.js';
import { cpuByThread, cpuMs, loadAverage, threadShares } from './proc-stats.js';

const CROWDSEC_WORST_MS = 11_000;
/** Each agent's metrics listener, on its own namespace's address. */
const METRICS_PORT = 9780;
/** PROPAGATION_BREAKDOWN=1: agents log at debug, and the latency is split by their log lines. */
const BREAKDOWN = process.env.PROPAGATION_BREAKDOWN === '1';
/** How long an agent may take to start: minutes on a shared machine at a load average of 30. */
const BUS_UP_MS = Number(process.env.PROPAGATION_START_MS ?? 60_000);
/** PROPAGATION_LATENCY_WARMUP=N: detections before the timed ones (default 1), printed apart. */
const WARMUP_SAMPLES = Math.min(50, Number(process.env.PROPAGATION_LATENCY_WARMUP ?? 1));

type Driver = 'library' | 'spawn';

interface Fleet {
  driver: Driver;
  lan: Lan;
  hubHost: Host;
  hubDir: string;
  agents: Host[];
  logs: string[];
  procs: Proc[];
  destroy(): Promise<void>;
}

async function startFleet(n: number, driver: Driver): Promise<Fleet> {
  const lan = await createLan(n + 1, 'prop');
  const hubHost = lan.hosts[0]!;
  const agents = lan.hosts.slice(1);
  const dirs: string[] = [];
  const procs: Proc[] = [];
  const hubDir = tempDir('bhub');
  dirs.push(hubDir);
  const destroy = async () => {
    for (const p of procs.reverse()) await p.stop();
    await lan.destroy();
    for (const d of dirs) removeDir(d);
  };
  try {
    const hub = rampart(hubHost, ['hub', '--data', hubDir, '--listen', hubHost.v4]);
    procs.push(hub);
    await hub.waitFor((l) => l.msg === 'hub started', 30_000, 'hub');
    const logs: string[] = [];
    for (let i = 0; i < n; i++) {
      const dir = tempDir(`bagent${i}`);
      dirs.push(dir);
      logs.push(join(dir, 'auth.log'));
      createLog(logs[i]!);
      const { token } = JSON.parse(
        await cli(hubHost, ['nodes', 'add', `a${i}`, '--data', hubDir, '--json']),
      ) as { token: string };
      await cli(agents[i]!, ['join', token, '--data', dir]);
    }
    for (let i = 0; i < n; i++) {
      // How the agent reaches its kernel: libnftables in-process, or nft spawned per commit.
      const config = join(dirs[i + 1]!, 'rampart.yaml');
      // The metrics listener is the throughput witness (rampart_agent_kernel_seq).
      writeFileSync(
        config,
        `firewall:\n  driver: ${driver}\nagent:\n  metrics:\n    listen: '${agents[i]!.v4}:${METRICS_PORT}'\n`,
      );
      const p = rampart(agents[i]!, [
        'agent',
        '--config',
        config,
        '--data',
        dirs[i + 1]!,
        '--watch',
        logs[i]!,
        '--firewall',
        'nftables',
      ]);
      procs.push(p);
    }
    for (const p of procs.slice(1))
      await p.waitFor((l) => l.msg === 'bus' && l.status === 'up', BUS_UP_MS, 'agent bus up');
    return { driver, lan, hubHost, hubDir, agents, logs, procs, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** Follows `nft monitor` in a namespace; calls back with each address added to a rampart set. */
function monitor(host: Host, onAdd: (addr: string, at: number) => void): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', host.ns, 'nft', 'monitor', 'new', 'elements'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    const at = performance.now();
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /add element inet rampart \S+ \{ (.*) \}/.exec(line);
      if (!m) continue;
      for (const el of m[1]!.split(',')) onAdd(el.trim().split(' ')[0]!, at);
    }
  });
  return child;
}

/** The hub's and the agents' process ids (`ip netns exec` execs the program in place). */
function procPids(fleet: Fleet): { hub: number; agents: number[] } {
  const [hub, ...agents] = fleet.procs.map((p) => p.child.pid!);
  return { hub: hub!, agents };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function latency(emit: Emit, fleet: Fleet, samples: number): Promise<number | undefined> {
  const n = fleet.agents.length;
  // Per address: when each other agent's kernel got it (index = agent).
  const seen = new Map<string, Map<number, number>>();
  const monitors = fleet.agents.slice(1).map((h, i) =>
    monitor(h, (addr, at) => {
      const m = seen.get(addr);
      if (m && !m.has(i + 1)) m.set(i + 1, at);
    }),
  );
  /** Failing lines for `addr` on agent 1; when each other agent's kernel had it. */
  const sample = async (addr: string) => {
    seen.set(addr, new Map());
    const t0 = performance.now();
    starts.set(addr, Date.now());
    appendLog(fleet.logs[0]!, sshdFailures(addr, 5, 'a0'));
    const end = t0 + 5000;
    while (seen.get(addr)!.size < n - 1 && performance.now() < end)
      await new Promise((r) => setTimeout(r, 2));
    const times = [...seen.get(addr)!.values()].map((t) => t - t0);
    await new Promise((r) => setTimeout(r, 100));
    return { times, complete: times.length === n - 1, slowest: Math.max(...times) };
  };
  const starts = new Map<string, number>();
  await new Promise((r) => setTimeout(r, 1000));
  // One detection end to end before the timed ones: the first decision after a start compiles
  // each process's whole path (every function on it runs for the first time, in 21 processes on 2
  // cores). It is printed beside, not mixed into the steady state a running fleet sees.
  const coldMs: number[] = [];
  for (let k = 0; k < WARMUP_SAMPLES; k++) {
    const one = await sample(`203.0.113.${201 + k}`);
    if (one.complete) coldMs.push(Number(one.slowest.toFixed(1)));
  }
  const pids = procPids(fleet);
  // What the fleet spends doing nothing (heartbeats, timers), so the per-decision figures can be
  // read without it.
  const idleHub0 = cpuMs([pids.hub]);
  const idleAgents0 = cpuMs(pids.agents);
  const idle0 = performance.now();
  await new Promise((r) => setTimeout(r, 3000));
  const idleS = (performance.now() - idle0) / 1000;
  const hubIdleMsPerS = (cpuMs([pids.hub]) - idleHub0) / idleS;
  const agentIdleMsPerS = (cpuMs(pids.agents) - idleAgents0) / idleS / pids.agents.length;
  const load = loadAverage();
  const hubCpu0 = cpuMs([pids.hub]);
  const agentCpu0 = cpuMs(pids.agents);
  const results: number[] = [];
  const perAgent: number[] = [];
  // The warm-up's lines are not part of the breakdown below.
  starts.clear();
  const run0 = performance.now();
  const missing: number[] = [];
  const inOrder: number[] = [];
  try {
    for (let k = 0; k < samples; k++) {
      const addr = `203.0.113.${k + 1}`;
      const one = await sample(addr);
      perAgent.push(...one.times);
      if (!one.complete) {
        for (let a = 1; a < n; a++) if (!seen.get(addr)!.has(a)) missing.push(a);
      } else {
        results.push(one.slowest);
        inOrder.push(one.slowest);
      }
    }
  } finally {
    for (const m of monitors) m.kill('SIGKILL');
  }
  // Includes the 100 ms pauses between samples (idle timers), the same in every run.
  const hubCpu = cpuMs([pids.hub]) - hubCpu0;
  const agentCpu = cpuMs(pids.agents) - agentCpu0;
  const runS = (performance.now() - run0) / 1000;
  const sorted = results.sort((a, b) => a - b);
  const each = perAgent.sort((a, b) => a - b);
  // Where the time goes, from the processes' own log timestamps (same clock, ms resolution):
  // line written → local ban on agent 1 (detection), → decision received by the last agent (hub
  // and bus), the rest is the agents' firewall commit.
  const stage = (pick: (addr: string, t0: number) => number | undefined) => {
    const v = [...starts].map(([a, t0]) => pick(a, t0)).filter((x): x is number => x !== undefined);
    return v.length > 0
      ? pct(
          v.sort((a, b) => a - b),
          50,
        )
      : null;
  };
  const agentProcs = fleet.procs.slice(1);
  const detectP50 = !BREAKDOWN
    ? null
    : stage((a, t0) => {
        const l = agentProcs[0]!.lines.find(
          (x) => x.msg === 'banned locally; reporting to the hub' && x.target === a,
        );
        return l ? (l.time as number) - t0 : undefined;
      });
  const receivedP50 = !BREAKDOWN
    ? null
    : stage((a, t0) => {
        const times = agentProcs
          .slice(1)
          .map(
            (p) =>
              p.lines.find((x) => x.msg === 'decision received' && x.target === a)?.time as
                | number
                | undefined,
          );
        return times.every((t) => t !== undefined) ? Math.max(...(times as number[])) - t0 : undefined;
      });
  const ms = (v: number | undefined) => (v === undefined ? null : Number(v.toFixed(1)));
  const p99 = sorted.length > 0 ? pct(sorted, 99) : undefined;
  emit({
    bench: 'propagation',
    figure: `propagation, failing line on agent 1 -> element in every other agent's kernel set, ${n} agents`,
    driver: fleet.driver,
    agents: n,
    samples,
    complete: sorted.length,
    // "every other agent": the slowest of the n-1 kernels, per detection.
    p50Ms: ms(sorted.length > 0 ? pct(sorted, 50) : undefined),
    p99Ms: ms(p99),
    maxMs: ms(sorted[sorted.length - 1]),
    // One agent's kernel, for comparison.
    perAgentP50Ms: ms(each.length > 0 ? pct(each, 50) : undefined),
    perAgentP99Ms: ms(each.length > 0 ? pct(each, 99) : undefined),
    missedWithin5s: missing.length,
    // The slowest samples, by when they came (0 = the first timed one): a tail at the start is
    // code still compiling, one anywhere else is the machine.
    slowestSamples: inOrder
      .map((ms, i) => ({ i, ms: Number(ms.toFixed(1)) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5),
    // The first detection after the fleet started (untimed warm-up, above).
    coldFirstMs: coldMs,
    // PROPAGATION_BREAKDOWN=1 (agents at debug, which is itself a load): where the time goes.
    ...(BREAKDOWN
      ? { breakdownP50Ms: { detectedOnAgent1: detectP50, receivedByLastAgent: receivedP50 } }
      : {}),
    logLevel: process.env.FLEET_LOG_LEVEL,
    goal: 'p99 <= 50 ms with 20 agents on this 2-core machine',
    goalP99Ms: 50,
    hubCpuMsPerDecision: Number((hubCpu / samples).toFixed(2)),
    agentCpuMsPerDecision: Number((agentCpu / pids.agents.length / samples).toFixed(2)),
    // The same without what the processes spend idle over as long a time.
    hubCpuMsPerDecisionAboveIdle: Number(((hubCpu - hubIdleMsPerS * runS) / samples).toFixed(2)),
    agentCpuMsPerDecisionAboveIdle: Number(
      ((agentCpu / pids.agents.length - agentIdleMsPerS * runS) / samples).toFixed(2),
    ),
    hubIdleCpuMsPerS: Number(hubIdleMsPerS.toFixed(2)),
    agentIdleCpuMsPerS: Number(agentIdleMsPerS.toFixed(2)),
    loadAverage1m: load,
    crowdsecWorstMs: CROWDSEC_WORST_MS,
    crowdsecWorstOverP99: p99 ? Number((CROWDSEC_WORST_MS / p99).toFixed(1)) : null,
  });
  return p99;
}

/**
 * The load generator, in the hub's namespace. `single`: one POST /v1/decisions per ban, `conc` in
 * flight; `bulk`: POST /v1/decisions/bulk with `conc` bans per request, one at a time. It prints
 * the epoch ms of its first request, so the clock starts at the first POST. Request bodies are
 * built and the HTTP client is warmed (one GET /v1/health) before the clock starts: the figure is
 * the fleet's, not the time this client takes to write JSON or to compile its fetch. With agent
 * hosts after the arguments it is also the `metrics` witness: once posted it polls each agent's
 * kernel-seq metric until every one holds `lastSeq`, from the same warm process (a poller started
 * after the last POST was a node process starting up inside the measured tail). It prints its own
 * CPU for both parts.
 */
const LOADGEN = `
const [url, token, count, conc, mode, prefix, port, ...hosts] = process.argv.slice(1);
const n = Number(count);
const addr = (i) => prefix + '.' + (i >> 8) + '.' + (i & 255);
const headers = { authorization: 'Bearer ' + token, 'content-type': 'application/json' };
let next = 0, done = 0, failed = 0, lastSeq = 0;
async function worker() {
  while (next < n) {
    const i = next++;
    const res = await fetch(url + '/v1/decisions', { method: 'POST', headers, body: JSON.stringify({ target: addr(i), duration: 3600, reason: 'bench' }) });
    if (res.status !== 201) failed++;
    else lastSeq = Math.max(lastSeq, (await res.json()).seq ?? 0);
    done++;
  }
}
const bodies = [];
if (mode === 'bulk') {
  for (let at = 0; at < n; at += Number(conc)) {
    const decisions = [];
    for (let i = at; i < Math.min(n, at + Number(conc)); i++) decisions.push({ target: addr(i), duration: 3600, reason: 'bench' });
    bodies.push({ count: decisions.length, text: Buffer.from(JSON.stringify({ decisions })) });
  }
}
// node:http, not fetch: a 600 KB body through fetch cost this client ~100 ms of CPU per request.
const http = require('node:http');
const keepAlive = new http.Agent({ keepAlive: true });
function post(path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url + path, { method: 'POST', agent: keepAlive, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(parts).toString()) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function bulk() {
  for (const b of bodies) {
    const { status, json: body } = await post('/v1/decisions/bulk', b.text);
    if (status !== 200) failed += b.count;
    else { done += body.added; failed += body.errors.length + body.duplicates; lastSeq = Math.max(lastSeq, body.lastSeq ?? 0); }
  }
}
async function seqOf(h) {
  const text = await (await fetch('http://' + h + ':' + port + '/metrics')).text();
  const m = /^rampart_agent_kernel_seq (\\d+)/m.exec(text);
  return m ? Number(m[1]) : -1;
}
async function witness() {
  const have = new Set();
  const end = Date.now() + 60_000;
  while (have.size < hosts.length && Date.now() < end) {
    for (const h of hosts) if (!have.has(h) && (await seqOf(h).catch(() => -1)) >= lastSeq) have.add(h);
    if (have.size < hosts.length) await new Promise((r) => setTimeout(r, 50));
  }
  return have.size === hosts.length ? Date.now() : null;
}
const cpuMs = (c) => Math.round((c.user + c.system) / 1000);
(async () => {
  await (await fetch(url + '/v1/health')).text();
  await new Promise((resolve, reject) => http.get(url + '/v1/health', { agent: keepAlive }, (res) => res.resume().on('end', resolve)).on('error', reject));
  const startedAt = Date.now();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await (mode === 'bulk' ? bulk() : Promise.all(Array.from({ length: Number(conc) }, worker)));
  const ms = performance.now() - t0;
  const post = cpuMs(process.cpuUsage(c0));
  const c1 = process.cpuUsage();
  const doneAt = hosts.length > 0 ? await witness() : undefined;
  const cpu = { post, witness: cpuMs(process.cpuUsage(c1)) };
  console.log(JSON.stringify({ posted: done, failed, ms, startedAt, lastSeq, doneAt, cpu }));
})();
`;

/** Epoch milliseconds with sub-ms resolution (comparable with the load generator's Date.now()). */
const epochNow = () => performance.timeOrigin + performance.now();

/**
 * When every agent had every decision in its kernel, in epoch ms. `metrics` (default): each
 * agent's kernel-seq metric, polled by the load generator (above). `kernel-seq` (agents at debug): each agent's own line
 * 'decisions in the kernel' with the seq its last successful commit took there, stamped by the
 * agent itself, against the hub's last seq. `monitor`: one `nft monitor` per agent printing every element, the older
 * witness (for builds without that line), which is itself a load of two processes per agent.
 * Either way the elements are then read back from each kernel set one by one.
 */
type Witness = { done(lastSeq: number, count: number): Promise<number | undefined>; stop(): void };

function kernelSeqWitness(fleet: Fleet): Witness {
  const agents = fleet.procs.slice(1);
  return {
    async done(lastSeq) {
      const end = Date.now() + 60_000;
      let at = 0;
      for (const p of agents) {
        const line = await p
          .waitFor(
            (l) => l.msg === 'decisions in the kernel' && (l.seq as number) >= lastSeq,
            Math.max(1, end - Date.now()),
          )
          .catch(() => undefined);
        if (!line) return undefined;
        at = Math.max(at, line.time as number);
      }
      return at;
    },
    stop() {},
  };
}

function monitorWitness(fleet: Fleet, prefix: string): Witness {
  const counts = fleet.agents.map(() => 0);
  let lastAt = 0;
  const monitors = fleet.agents.map((h, i) =>
    monitor(h, (addr) => {
      if (!addr.startsWith(`${prefix}.`)) return;
      counts[i]!++;
      lastAt = epochNow();
    }),
  );
  return {
    async done(_lastSeq, count) {
      const end = performance.now() + 60_000;
      while (counts.some((c) => c < count) && performance.now() < end)
        await new Promise((r) => setTimeout(r, 20));
      return counts.every((c) => c >= count) ? lastAt : undefined;
    },
    stop() {
      for (const m of monitors) m.kill('SIGKILL');
    },
  };
}

async function throughput(
  emit: Emit,
  fleet: Fleet,
  count: number,
  mode: 'bulk' | 'single',
  prefix: string,
): Promise<number> {
  const witnessKind = process.env.PROPAGATION_WITNESS ?? 'metrics';
  if (witnessKind === 'kernel-seq' && process.env.FLEET_LOG_LEVEL !== 'debug')
    throw new Error(
      "the kernel-seq witness reads the agents' debug lines: FLEET_LOG_LEVEL=debug, or PROPAGATION_WITNESS=metrics",
    );
  // `metrics` (default): polled by the load generator itself once it has posted (LOADGEN).
  const witness =
    witnessKind === 'monitor'
      ? monitorWitness(fleet, prefix)
      : witnessKind === 'kernel-seq'
        ? kernelSeqWitness(fleet)
        : undefined;
  await new Promise((r) => setTimeout(r, 500));
  const token = readFileSync(join(fleet.hubDir, 'hub', 'admin.token'), 'utf8').trim();
  const agentHosts = fleet.agents.map((h) => h.v4);
  const perRequest = mode === 'bulk' ? Number(process.env.PROPAGATION_BULK_CHUNK ?? 10_000) : 64;
  // PROPAGATION_WARMUP=N (bulk only, default 0): N bans from 198.17.0.0/16 through the same path
  // first, untimed, until every agent has them in its kernel, so the timed run measures processes
  // whose code is compiled (V8 compiles the bulk path during its first burst: ADR 0048).
  const warm = mode === 'bulk' ? Math.min(65_536, Number(process.env.PROPAGATION_WARMUP ?? 0)) : 0;
  if (warm > 0) {
    const url = `http://${fleet.hubHost.v4}:7780`;
    const args = [
      '-e',
      LOADGEN,
      url,
      token,
      String(warm),
      String(perRequest),
      mode,
      '198.17',
      String(METRICS_PORT),
      ...agentHosts,
    ];
    const w = JSON.parse(await fleet.hubHost.exec(process.execPath, args, { timeoutMs: 600_000 })) as {
      doneAt: number | null;
    };
    if (w.doneAt === null) throw new Error('warm-up: not every agent took the warm-up bans within a minute');
  }
  const pids = procPids(fleet);
  const load = loadAverage();
  const hubCpu0 = cpuMs([pids.hub]);
  const agentCpu0 = cpuMs(pids.agents);
  const hubThreads0 = [cpuByThread(pids.hub)];
  const agentThreads0 = pids.agents.map(cpuByThread);
  const out = await fleet.hubHost.exec(
    process.execPath,
    [
      '-e',
      LOADGEN,
      `http://${fleet.hubHost.v4}:7780`,
      token,
      String(count),
      String(perRequest),
      mode,
      prefix,
      String(METRICS_PORT),
      ...(witness ? [] : agentHosts),
    ],
    { timeoutMs: 600_000 },
  );
  const posted = JSON.parse(out) as {
    posted: number;
    failed: number;
    ms: number;
    startedAt: number;
    lastSeq: number;
    doneAt?: number | null;
    cpu: { post: number; witness: number };
  };
  const lastAt = witness ? await witness.done(posted.lastSeq, count) : (posted.doneAt ?? undefined);
  const hubCpu = cpuMs([pids.hub]) - hubCpu0;
  const agentCpu = cpuMs(pids.agents) - agentCpu0;
  const hubThreads = threadShares(hubThreads0, [cpuByThread(pids.hub)], count);
  const agentThreads = threadShares(agentThreads0, pids.agents.map(cpuByThread), count);
  witness?.stop();
  // No loss: every address in every agent's kernel set, read back from the kernel element by element.
  const expected = Array.from({ length: count }, (_, i) => `${prefix}.${i >> 8}.${i & 255}`);
  // One agent at a time, with time to spare: ten `nft -j list set` of 20,000 elements at once on
  // a loaded machine ran past the 30 s default and left a truncated JSON.
  const inKernel: number[] = [];
  for (const [i, h] of fleet.agents.entries()) {
    const out = await h.exec('nft', ['-j', 'list', 'set', 'inet', 'rampart', 'blocklist_v4'], {
      timeoutMs: 300_000,
    });
    let json: { nftables: Array<{ set?: { elem?: unknown[] } }> };
    try {
      json = JSON.parse(out);
    } catch (err) {
      throw new Error(`agent ${i}: nft -j list set gave ${out.length} bytes of bad JSON`, { cause: err });
    }
    const elems = json.nftables.find((x) => x.set)?.set?.elem ?? [];
    const got = new Set(elems.map((e) => /"(\d+\.\d+\.\d+\.\d+)"/.exec(JSON.stringify(e))?.[1]));
    inKernel.push(expected.filter((a) => got.has(a)).length);
  }
  // Envelopes the agents refused meanwhile, by reason: an agent that falls further behind than
  // the envelope window (60 s) drops what it reads as `expired` and catches up over HTTP instead.
  const dropped: Record<string, number> = {};
  for (const p of fleet.procs.slice(1))
    for (const l of p.lines)
      if (l.msg === 'decision message dropped' && (l.time as number) >= posted.startedAt)
        dropped[l.reason as string] = (dropped[l.reason as string] ?? 0) + 1;
  // Which envelope kinds carried the decisions (`decisions-packed` once every agent reads it).
  const metrics = await fleet.hubHost.exec(process.execPath, [
    '-e',
    `fetch(process.argv[1], { headers: { authorization: 'Bearer ' + process.argv[2] } }).then((r) => r.text()).then((t) => process.stdout.write(t))`,
    `http://${fleet.hubHost.v4}:7780/metrics`,
    token,
  ]);
  const envelopes: Record<string, number> = {};
  for (const m of metrics.matchAll(/^rampart_hub_decision_envelopes_total\{kind="([a-z-]+)"\} (\d+)$/gm))
    envelopes[m[1]!] = Number(m[2]);
  // Not all there within a minute of the last POST: no rate (the read-back says what is missing).
  const seconds = lastAt === undefined ? Number.NaN : (lastAt - posted.startedAt) / 1000;
  const rate = lastAt === undefined ? 0 : Math.round(count / seconds);
  emit({
    bench: mode === 'bulk' ? 'propagation-throughput-bulk' : 'propagation-throughput-single-post',
    figure: 'end-to-end decisions/s, bulk API -> every element in every agent kernel (read back)',
    driver: fleet.driver,
    agents: fleet.agents.length,
    decisions: count,
    warmup: warm,
    witness: witnessKind,
    ...(mode === 'bulk' ? { bansPerRequest: perRequest } : { concurrentPosts: perRequest }),
    apiFailures: posted.failed,
    postSeconds: Number((posted.ms / 1000).toFixed(2)),
    endToEndSeconds: Number(seconds.toFixed(2)),
    decisionsPerSecond: rate,
    apiDecisionsPerSecond: Math.round(count / (posted.ms / 1000)),
    // The bench's own client on the same two cores: CPU ms to post, and to poll the witness.
    loadgenCpuMs: posted.cpu,
    minInKernel: Math.min(...inKernel),
    lost: count * fleet.agents.length - inKernel.reduce((a, b) => a + b, 0),
    envelopesDropped: dropped,
    envelopesSealed: envelopes,
    goalPerSecond: 10_000,
    ratioToGoal: Number((rate / 10_000).toFixed(2)),
    // Noise-resistant: CPU the hub and one agent spent per decision (from /proc, 10 ms ticks).
    hubCpuMsPerDecision: Number((hubCpu / count).toFixed(4)),
    agentCpuMsPerDecision: Number((agentCpu / pids.agents.length / count).toFixed(4)),
    // The same in µs by thread (an agent's: the average of them), where it went.
    hubThreadsUs: hubThreads,
    agentThreadsUs: agentThreads,
    loadAverage1m: load,
  });
  return rate;
}

export default async function (emit: Emit): Promise<void> {
  // 100 detections per fleet size: the p99 of 40 is their slowest one, a single cold or unlucky
  // sample; of 100 it is the second slowest.
  // At most 200: the warm-up detections use 203.0.113.201 and up.
  const samples = Math.min(200, Number(process.env.PROPAGATION_SAMPLES ?? 100));
  // Agents log at info, as in production: at debug each one writes lines per decision that this
  // process must read, on the same two cores. The breakdown needs those lines.
  process.env.FLEET_LOG_LEVEL ??= BREAKDOWN ? 'debug' : 'info';
  // Addresses come from 198.18.0.0/16 (bulk) and 198.19.0.0/16 (single POSTs): 65,536 each at most.
  const count = Math.min(65_536, Number(process.env.PROPAGATION_DECISIONS ?? 20_000));
  const single = Math.min(65_536, Number(process.env.PROPAGATION_SINGLE_DECISIONS ?? 2000));
  const sizes = (process.env.PROPAGATION_AGENTS ?? '10,20').split(',').map(Number);
  const drivers = (process.env.PROPAGATION_DRIVERS ?? 'library,spawn').split(',') as Driver[];
  for (const n of sizes) {
    const p99: Partial<Record<Driver, number>> = {};
    const bulk: Partial<Record<Driver, number>> = {};
    for (const driver of drivers) {
      const fleet = await startFleet(n, driver);
      try {
        // PROPAGATION_SAMPLES=0: the throughput part alone.
        if (samples > 0) p99[driver] = await latency(emit, fleet, samples);
        // Throughput with the first fleet size (10 agents by default); 0 decisions skips it.
        if (n === sizes[0] && count > 0) {
          bulk[driver] = await throughput(emit, fleet, count, 'bulk', '198.18');
          if (single > 0) {
            const one = await throughput(emit, fleet, single, 'single', '198.19');
            emit({
              bench: 'propagation-throughput-comparison',
              driver,
              agents: n,
              bulkDecisionsPerSecond: bulk[driver],
              singlePostDecisionsPerSecond: one,
              bulkOverSinglePost: Number((bulk[driver]! / one).toFixed(1)),
              bulkOverGoal: Number((bulk[driver]! / 10_000).toFixed(2)),
            });
          }
        }
      } finally {
        await fleet.destroy();
      }
    }
    // In-process vs spawn, side by side from the same run.
    if (p99.library !== undefined && p99.spawn !== undefined)
      emit({
        bench: 'propagation-driver-comparison',
        agents: n,
        library_p99_ms: Number(p99.library.toFixed(1)),
        spawn_p99_ms: Number(p99.spawn.toFixed(1)),
        ratio_library_over_spawn_p99: Number((p99.library / p99.spawn).toFixed(2)),
        ...(bulk.library && bulk.spawn
          ? {
              library_bulk_per_s: bulk.library,
              spawn_bulk_per_s: bulk.spawn,
              ratio_library_over_spawn_bulk: Number((bulk.library / bulk.spawn).toFixed(2)),
            }
          : {}),
        goal: 'p99 <= 50 ms with 20 agents; >= 10,000 decisions/s',
      });
  }
}

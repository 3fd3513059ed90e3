/**
 * An agent's CPU per decision on the bus path (envelope in → verified → state written → kernel
 * commit), from real processes: one hub and N agents (the `rampart agent` CLI, nftables through
 * libnftables, info level), each in its own network namespace; bulk POSTs to the hub; each agent's
 * CPU from /proc (every thread) divided by the decisions it applied. A load-independent figure:
 * it does not depend on how quickly the shared machine schedules anyone.
 *
 * `AGENT_INTAKE_MAINS` (comma-separated `dist/cli/main.js` paths, default this build's) starts one
 * agent per build in the same fleet, so two builds take the same decisions at the same time and
 * their figures compare side by side (`AGENT_INTAKE_FLAGS`: extra Node.js flags per build, `;` between
 * builds). `AGENT_INTAKE_DECISIONS` per round (default 20,000),
 * `AGENT_INTAKE_ROUNDS` (default 3), after a warm-up round of 4,000 (`AGENT_INTAKE_WARMUP`, 0 for
 * none: round 1 then measures freshly started agents); 65,536 decisions in all at most.
 *
 * `AGENT_INTAKE_SINGLE=1`: the single-decision path instead (issue 10's propagation fleet, where
 * each decision travels alone): one POST /v1/decisions at a time, `AGENT_INTAKE_GAP_MS` (default
 * 25) apart, so every decision reaches the agents in an envelope of its own and commits alone;
 * `AGENT_INTAKE_DECISIONS` then defaults to 400 and the warm-up to 100. The figure is CPU per
 * decision above idle (the agents' idle rate, measured for 4 s after the warm-up, is subtracted).
 */

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { cli, inKernelSet, MAIN, Proc, rampart, removeDir, tempDir } from '../test/fleet/harness.js';
import { createLan, type Host } from '../test/helpers/netns.js';
import type { Emit } from './list.js';
import { cpuByThread, cpuMs, loadAverage } from './proc-stats.js';

/**
 * Bulk POSTs of `chunk` decisions; with a `gap` (ms), one POST /v1/decisions at a time that far
 * apart instead, so each decision travels and commits alone.
 */
const LOADGEN = `
const [url, token, first, count, chunk, prefix, gap] = process.argv.slice(1);
const addr = (i) => prefix + '.' + (i >> 8) + '.' + (i & 255);
const headers = { authorization: 'Bearer ' + token, 'content-type': 'application/json' };
const post = (path, body) => fetch(url + path, { method: 'POST', headers, body: JSON.stringify(body) });
(async () => {
  let lastSeq = 0, failed = 0;
  const end = Number(first) + Number(count);
  const step = gap ? 1 : Number(chunk);
  for (let at = Number(first); at < end; at += step) {
    if (gap) {
      const res = await post('/v1/decisions', { target: addr(at), duration: 3600, reason: 'bench' });
      if (res.status !== 201) failed++;
      else lastSeq = Math.max(lastSeq, (await res.json()).seq ?? 0);
      await new Promise((r) => setTimeout(r, Number(gap)));
      continue;
    }
    const decisions = [];
    for (let i = at; i < Math.min(end, at + step); i++) decisions.push({ target: addr(i), duration: 3600, reason: 'bench' });
    const res = await post('/v1/decisions/bulk', { decisions });
    const body = await res.json();
    if (res.status !== 200) failed += decisions.length;
    else { failed += body.errors.length + body.duplicates; lastSeq = Math.max(lastSeq, body.lastSeq ?? 0); }
  }
  console.log(JSON.stringify({ failed, lastSeq }));
})();
`;

const SINGLE = process.env.AGENT_INTAKE_SINGLE === '1';
// AGENT_INTAKE_WARMUP=0: no warm-up round, so round 1 is what freshly started agents pay (V8's
// compilation of the path included), as in the propagation benchmark's cold figure.
const WARM_UP = Number(process.env.AGENT_INTAKE_WARMUP ?? (SINGLE ? 100 : 4000));
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface AgentProc {
  main: string;
  dir: string;
  host: Host;
  proc: Proc;
}

/** The agent's applied seq, read from its state file (WAL: a reader never blocks the agent). */
function appliedSeq(dir: string): number {
  const db = new Database(join(dir, 'agent', 'agent.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").get() as
      | { value: string }
      | undefined;
    return Number(row?.value ?? 0);
  } finally {
    db.close();
  }
}

/**
 * CPU ms of a process's live threads from their schedstat (nanoseconds): the single-decision figure
 * is about a millisecond a decision, and /proc/PID/stat's 10 ms ticks were a few percent of a round.
 * A thread that ended meanwhile is missing (the single path starts none).
 */
function cpuFineMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return ns / 1e6;
}

/** User and system CPU ms of a process (every thread; /proc clock ticks of 10 ms). */
function cpuSplit(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) * 10, sys: Number(f[12]) * 10 };
}

/** Elements of the round's prefix in the agent's kernel set (the no-loss check). */
async function inKernel(host: Host, prefix: string): Promise<number> {
  const out = await host.exec('nft', ['list', 'set', 'inet', 'rampart', 'blocklist_v4'], {
    timeoutMs: 300_000,
  });
  return out.split(`${prefix}.`).length - 1;
}

export default async function (emit: Emit): Promise<void> {
  const mains = (process.env.AGENT_INTAKE_MAINS ?? MAIN).split(',');
  // Extra Node.js flags per agent, aligned with the builds (`;`-separated, spaces within one).
  const extra = (process.env.AGENT_INTAKE_FLAGS ?? '').split(';').map((f) => f.split(' ').filter(Boolean));
  const count = Number(process.env.AGENT_INTAKE_DECISIONS ?? (SINGLE ? 400 : 20_000));
  const gapMs = Number(process.env.AGENT_INTAKE_GAP_MS ?? 25);
  const rounds = Number(process.env.AGENT_INTAKE_ROUNDS ?? 3);
  if (WARM_UP + count * rounds > 65_536)
    throw new Error('AGENT_INTAKE_DECISIONS × AGENT_INTAKE_ROUNDS must be at most 61,536');
  // A CPU profile per agent (written when it stops) into this folder.
  const profDir = process.env.AGENT_INTAKE_PROFILE;
  // Or `perf record -g` of each agent during the last round (JS frames named through --perf-basic-prof).
  const perfDir = process.env.AGENT_INTAKE_PERF;
  const profile = [
    ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
    ...(perfDir ? ['--perf-basic-prof'] : []),
  ];
  const lan = await createLan(mains.length + 1, 'aint');
  const dirs: string[] = [];
  const procs: Proc[] = [];
  try {
    const hubHost = lan.hosts[0]!;
    const hubDir = tempDir('aihub');
    dirs.push(hubDir);
    const hub = rampart(hubHost, ['hub', '--data', hubDir, '--listen', hubHost.v4]);
    procs.push(hub);
    await hub.waitFor((l) => l.msg === 'hub started', 60_000, 'hub');
    const agents: AgentProc[] = [];
    for (const [i, main] of mains.entries()) {
      const host = lan.hosts[i + 1]!;
      const dir = tempDir(`aiagent${i}`);
      dirs.push(dir);
      const { token } = JSON.parse(
        await cli(hubHost, ['nodes', 'add', `a${i}`, '--data', hubDir, '--json']),
      ) as {
        token: string;
      };
      await cli(host, ['join', token, '--data', dir]);
      // No reconcile pass inside a measured round (it walks every ban): only the intake is timed.
      const config = join(dir, 'rampart.yaml');
      writeFileSync(config, 'firewall:\n  driver: library\nagent:\n  reconcileInterval: 1h\n');
      const proc = new Proc(
        host.spawn(
          process.execPath,
          [
            ...NODE_FLAGS,
            ...profile,
            main,
            'agent',
            '--config',
            config,
            '--data',
            dir,
            '--firewall',
            'nftables',
          ],
          { env: { ...process.env, RAMPART_LOG_LEVEL: 'info' } },
        ),
      );
      procs.push(proc);
      agents.push({ main, dir, host, proc });
    }
    for (const a of agents)
      await a.proc.waitFor((l) => l.msg === 'bus' && l.status === 'up', 60_000, 'agent bus up');
    const token = readFileSync(join(hubDir, 'hub', 'admin.token'), 'utf8').trim();
    const pids = agents.map((a) => a.proc.child.pid!);
    // CPU ms per second of each agent doing nothing (heartbeats, timers), measured after the warm-up.
    let idleMsPerS = pids.map(() => 0);
    // Round 0 warms the agents up (JIT, caches) and is not reported.
    for (let r = WARM_UP > 0 ? 0 : 1; r <= rounds; r++) {
      // Freshly started agents release their start-up memory once settled (ADR 0056): not in round 1.
      await sleep(r === 1 && WARM_UP === 0 ? 3000 : 1000);
      const prefix = '198.18';
      const first = r === 0 ? 0 : WARM_UP + (r - 1) * count;
      const n = r === 0 ? WARM_UP : count;
      const load = loadAverage();
      const before = pids.map((p) => cpuMs([p]));
      const fineBefore = pids.map(cpuFineMs);
      const hubBefore = cpuMs([hub.child.pid!]);
      const splitBefore = pids.map(cpuSplit);
      const threadsBefore = pids.map(cpuByThread);
      const perf =
        perfDir && r === rounds
          ? pids.map((p) =>
              spawn(
                'perf',
                ['record', '-F', '4999', '-g', '-p', String(p), '-o', join(perfDir, `perf-${p}.data`)],
                {
                  stdio: 'ignore',
                },
              ),
            )
          : [];
      const round0 = performance.now();
      const out = await hubHost.exec(
        process.execPath,
        [
          '-e',
          LOADGEN,
          `http://${hubHost.v4}:7780`,
          token,
          String(first),
          String(n),
          '10000',
          prefix,
          SINGLE ? String(gapMs) : '',
        ],
        { timeoutMs: 600_000 },
      );
      const posted = JSON.parse(out) as { failed: number; lastSeq: number };
      // Applied (state written), the round's last element in the kernel (commits go in staging
      // order), then quiet: the kernel commits are in the figure.
      const end = Date.now() + 300_000;
      const lastAddr = `${prefix}.${(first + n - 1) >> 8}.${(first + n - 1) & 255}`;
      for (const a of agents) {
        while (appliedSeq(a.dir) < posted.lastSeq && Date.now() < end) await sleep(100);
        while (!(await inKernelSet(a.host, lastAddr)) && Date.now() < end) await sleep(100);
      }
      let last = pids.map((p) => cpuMs([p]));
      for (let quiet = 0; quiet < 3 && Date.now() < end; ) {
        await sleep(200);
        const now = pids.map((p) => cpuMs([p]));
        quiet = now.every((v, i) => v === last[i]) ? quiet + 1 : 0;
        last = now;
      }
      for (const p of perf) {
        p.kill('SIGINT');
        await new Promise((res) => p.once('exit', res));
      }
      const roundS = (performance.now() - round0) / 1000;
      const fineAfter = pids.map(cpuFineMs);
      if (r === 0) {
        if (SINGLE) {
          const idle0 = pids.map(cpuFineMs);
          const t0 = performance.now();
          await sleep(4000);
          const s = (performance.now() - t0) / 1000;
          idleMsPerS = pids.map((p, i) => (cpuFineMs(p) - idle0[i]!) / s);
        }
        continue;
      }
      // The hub's side of the same round (API, append, sealing, the broker's sends to every agent).
      emit({
        bench: 'agent-intake-hub',
        figure: 'hub CPU µs per decision, bulk API → published to every agent, from /proc',
        agents: agents.length,
        round: r,
        decisions: count,
        hubCpuUsPerDecision: Number((((cpuMs([hub.child.pid!]) - hubBefore) * 1000) / count).toFixed(1)),
        loadAverage1m: load,
      });
      const splitAfter = pids.map(cpuSplit);
      const threadsAfter = pids.map(cpuByThread);
      for (const [i, a] of agents.entries()) {
        const held = await inKernel(a.host, prefix);
        emit({
          bench: 'agent-intake',
          figure: 'agent CPU µs per decision, bus path (envelope → verify → state → kernel), from /proc',
          build: a.main,
          flags: (extra[i] ?? []).join(' '),
          round: r,
          decisions: count,
          apiFailures: posted.failed,
          inKernel: held,
          lost: first + count - held,
          agentCpuUsPerDecision: Number((((last[i]! - before[i]!) * 1000) / count).toFixed(1)),
          ...(SINGLE
            ? {
                mode: 'single',
                // From the threads' schedstat (ns), all of it and above idle.
                agentCpuUsPerDecisionFine: Number(
                  (((fineAfter[i]! - fineBefore[i]!) * 1000) / count).toFixed(1),
                ),
                agentCpuUsPerDecisionAboveIdle: Number(
                  (((fineAfter[i]! - fineBefore[i]! - idleMsPerS[i]! * roundS) * 1000) / count).toFixed(1),
                ),
                idleCpuMsPerS: Number(idleMsPerS[i]!.toFixed(2)),
              }
            : {}),
          systemUsPerDecision: Number(
            (((splitAfter[i]!.sys - splitBefore[i]!.sys) * 1000) / count).toFixed(1),
          ),
          // Where it went, per thread (µs per decision; a thread that ended meanwhile is missing).
          threads: Object.fromEntries(
            [...threadsAfter[i]!]
              .map(
                ([k, v]) =>
                  [k.split('#')[0], ((v - (threadsBefore[i]!.get(k) ?? 0)) * 1000) / count] as const,
              )
              .filter(([, v]) => v > 0)
              .reduce((m, [k, v]) => m.set(k!, (m.get(k!) ?? 0) + v), new Map<string, number>()),
          ),
          loadAverage1m: load,
        });
      }
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await lan.destroy();
    for (const d of dirs) removeDir(d);
  }
}

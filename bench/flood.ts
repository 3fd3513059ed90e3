/**
 * An honest node's report latency while another node floods the bus (issue 13, ADR 0027): from
 * the honest node's publish to a third node receiving the hub's decision, over the real embedded
 * broker, first on a quiet bus, then while a node in another process publishes 10,000 junk
 * packets and 3,000 validly signed reports (far over its budget). Goal: p99 ≤ 50 ms in both.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { MqttClientTransport } from '../src/bus/mqtt-client.js';
import { topics } from '../src/bus/transport.js';
import { tokenHash } from '../src/hub/auth.js';
import { type Hub, startHub } from '../src/hub/hub.js';
import { open, ReplayCache, seal } from '../src/trust/envelope.js';
import { generateKeyPair, type KeyPair, publicKeyToText } from '../src/trust/keys.js';
import { nodeBusClient } from '../test/hub/helpers.js';
import type { Emit } from './list.js';

const GOAL_P99_MS = 50;
const JUNK = 10_000;
const SIGNED = 3_000;
const here = dirname(fileURLToPath(import.meta.url));

export default async function floodBench(emit: Emit): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-flood-'));
  // The default per-node budget (100 at once, 600 a minute), doubled so the honest node's own
  // samples stay within it.
  const hub = await startHub({
    dataDir: dir,
    apiPort: 0,
    brokerPort: 0,
    protectInterfaces: false,
    policy: { rateBurst: 200, ratePerMinute: 1200 },
  });
  const clients: MqttClientTransport[] = [];
  try {
    const good = await enrol(hub, 'good');
    const bad = await enrol(hub, 'bad');
    const watch = await enrol(hub, 'watcher');
    const goodBus = await nodeBusClient({ hub }, 'good', good.token);
    const watcher = await nodeBusClient({ hub }, 'watcher', watch.token);
    clients.push(goodBus, watcher);
    const seen = new Map<string, number>();
    // When the hub appended each decision: splits the latency into intake + decision vs delivery.
    const appended = new Map<string, number>();
    hub.onDecision((d) => appended.set(d.target, performance.now()));
    const replay = new ReplayCache();
    await watcher.subscribe(topics.decisions(hub.fleet), (_t, payload) => {
      const at = performance.now();
      const r = open(payload, {
        keyFor: (f) => (f === 'hub' ? hub.publicKey : undefined),
        replay,
        expectKind: ['decision', 'decisions'],
      });
      if (!r.ok) return;
      for (const d of (r.env.kind === 'decisions' ? r.env.body : [r.env.body]) as Array<{ target: string }>)
        if (!seen.has(d.target)) seen.set(d.target, at);
    });
    let sample = 0;
    const honest = async (spacingMs: number, keepGoing: () => boolean, min: number) => {
      const sent = new Map<string, number>();
      while (sent.size < min || keepGoing()) {
        const k = sample++;
        const target = `198.51.${100 + (k >> 8)}.${k & 255}`;
        const body = { target, rule: 'sshd', reason: '', hits: 5, duration: 600, at: Date.now() };
        const bytes = seal('report', body, 'good', good.keys.privateKey);
        sent.set(target, performance.now());
        void goodBus.publish(topics.reports(hub.fleet, 'good'), bytes);
        await new Promise((r) => setTimeout(r, spacingMs));
      }
      const end = performance.now() + 30_000;
      while ([...sent.keys()].some((a) => !seen.has(a)) && performance.now() < end)
        await new Promise((r) => setTimeout(r, 10));
      const got = [...sent].filter(([a]) => seen.has(a));
      const lat = got.map(([a, t]) => seen.get(a)! - t).sort((x, y) => x - y);
      const decided = got.map(([a, t]) => (appended.get(a) ?? Number.NaN) - t).sort((x, y) => x - y);
      return { lat, decided, lost: sent.size - lat.length };
    };

    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const quiet = await honest(20, () => false, 40);
    const quietLoop = loopFigures(loop);
    emit({ ...figures('quiet', quiet), ...quietLoop });

    let flooding = true;
    const floodRun = runFlooder(hub, bad).finally(() => {
      flooding = false;
    });
    const during = await honest(25, () => flooding, 40);
    const floodLoop = loopFigures(loop);
    loop.disable();
    const flood = await floodRun;
    await hub.intake?.drain();
    await hub.core.drain();
    const dropped = await hub.metrics.byLabel('rampart_hub_dropped_messages_total', 'reason');
    const reports = await hub.metrics.byLabel('rampart_hub_reports_total', 'result');
    const stats = hub.intake?.stats();
    const q = figures('flood', during);
    emit({
      ...q,
      ...floodLoop,
      vsQuietP99: quiet.lat.length > 0 ? +(q.p99Ms / figures('quiet', quiet).p99Ms).toFixed(2) : null,
      flood: { junk: JUNK, signed: SIGNED, seconds: +flood.seconds.toFixed(2), dropped, reports },
      ...(stats
        ? {
            intake: {
              floodQueuePeak: stats.get('bad')?.peak,
              honestMaxWaited: stats.get('good')?.maxWaited,
            },
          }
        : {}),
    });
  } finally {
    for (const c of clients) await c.close().catch(() => undefined);
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function figures(phase: string, r: { lat: number[]; decided: number[]; lost: number }) {
  const pct = (list: number[], p: number) =>
    +(list[Math.min(list.length - 1, Math.ceil(p * list.length) - 1)] ?? Number.NaN).toFixed(1);
  const p99 = pct(r.lat, 0.99);
  return {
    bench: 'flood',
    phase,
    samples: r.lat.length,
    lost: r.lost,
    p50Ms: pct(r.lat, 0.5),
    p99Ms: p99,
    maxMs: +(r.lat.at(-1) ?? Number.NaN).toFixed(1),
    // Publish to the decision appended at the hub (the rest is the decision's way out).
    decidedP50Ms: pct(r.decided, 0.5),
    decidedP99Ms: pct(r.decided, 0.99),
    goalP99Ms: GOAL_P99_MS,
    vsGoal: +(p99 / GOAL_P99_MS).toFixed(2),
  };
}

/** The hub process's event-loop delay over the phase (then reset for the next). */
function loopFigures(h: IntervalHistogram) {
  const out = {
    loopDelayP99Ms: +(h.percentile(99) / 1e6).toFixed(1),
    loopDelayMaxMs: +(h.max / 1e6).toFixed(1),
  };
  h.reset();
  return out;
}

async function enrol(hub: Hub, name: string): Promise<{ keys: KeyPair; token: string }> {
  const keys = generateKeyPair();
  const token = `bench-${name}-${Math.random().toString(36).slice(2)}`;
  await hub.core.addNode(name, 'x');
  await hub.core.enrol(name, 'x', publicKeyToText(keys.publicKey), tokenHash(token));
  return { keys, token };
}

/** The flooding node, as a separate process (bench/flood-sender.ts). */
function runFlooder(hub: Hub, bad: { keys: KeyPair; token: string }): Promise<{ seconds: number }> {
  const args = {
    url: hub.busInfo.url,
    name: 'bad',
    token: bad.token,
    privateKeyPem: bad.keys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    fleet: hub.fleet,
    junk: JUNK,
    signed: SIGNED,
    bursts: 20,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, 'flood-sender.js'), JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`flood sender exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1)!));
      } catch (err) {
        reject(err);
      }
    });
  });
}

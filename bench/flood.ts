/**
 * An honest node's report latency while another node floods the bus (issue 13, ADR 0027): from
 * the honest node's publish to a third node receiving the hub's decision, over the real embedded
 * broker, first on a quiet bus, then for 8 s while a node in another process publishes junk and
 * validly signed reports (far over its budget) as fast as the broker takes them. Goal: p99 ≤ 50 ms
 * in both. Run twice, side by side: a hub that only queues fairly and budgets (ADR 0027), then the
 * default hub, which also stops reading a node it keeps refusing (ADR 0037).
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
/** How long the flood phase lasts (the flooder sends as fast as it can all along). */
const FLOOD_MS = 8_000;
const here = dirname(fileURLToPath(import.meta.url));

export default async function floodBench(emit: Emit): Promise<void> {
  // The comparison first: the same flood against a hub that only queues fairly and budgets
  // (FLOOD_ONLY=throttle skips it, e.g. to profile the default hub alone).
  if (process.env.FLOOD_ONLY !== 'throttle') await floodRun(emit, false);
  await floodRun(emit, true);
}

/** One hub, a quiet phase then a flood phase; `throttle` says whether the hub may hold the flooder. */
async function floodRun(emit: Emit, throttle: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-flood-'));
  // The default per-node budget (100 at once, 600 a minute), doubled so the honest node's own
  // samples stay within it.
  const hub = await startHub({
    dataDir: dir,
    apiPort: 0,
    brokerPort: 0,
    protectInterfaces: false,
    policy: { rateBurst: 200, ratePerMinute: 1200 },
    ...(throttle ? {} : { intake: { throttle: false } }),
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
      // FLOOD_DEBUG=1: when the slow samples were sent (ms into the phase) and where they lost time.
      if (process.env.FLOOD_DEBUG) {
        const t0 = [...sent.values()][0] ?? 0;
        for (const [a, t] of got) {
          const l = seen.get(a)! - t;
          const decided = (appended.get(a) ?? Number.NaN) - t;
          if (l > 15)
            console.error(
              `slow sample: +${(t - t0).toFixed(0)} ms, ${l.toFixed(1)} ms (decided at ${decided.toFixed(1)})`,
            );
        }
      }
      const lat = got.map(([a, t]) => seen.get(a)! - t).sort((x, y) => x - y);
      const decided = got.map(([a, t]) => (appended.get(a) ?? Number.NaN) - t).sort((x, y) => x - y);
      return { lat, decided, lost: sent.size - lat.length };
    };

    const variant = throttle ? 'throttle' : 'fair-queue-only';
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const quiet = await honest(20, () => false, 40);
    const quietLoop = loopFigures(loop);
    emit({ ...figures('quiet', quiet), variant, ...quietLoop });

    const flooder = await startFlooder(hub, bad);
    const floodEnd = performance.now() + FLOOD_MS;
    const during = await honest(40, () => performance.now() < floodEnd, 40);
    const flood = await flooder.stop();
    const floodLoop = loopFigures(loop);
    loop.disable();
    await hub.intake?.drain();
    await hub.core.drain();
    const dropped = await hub.metrics.byLabel('rampart_hub_dropped_messages_total', 'reason');
    const reports = await hub.metrics.byLabel('rampart_hub_reports_total', 'result');
    const holds = await hub.metrics.value('rampart_hub_bus_holds_total', {});
    const stats = hub.intake?.stats();
    const q = figures('flood', during);
    emit({
      ...q,
      variant,
      ...floodLoop,
      vsQuietP99: quiet.lat.length > 0 ? +(q.p99Ms / figures('quiet', quiet).p99Ms).toFixed(2) : null,
      flood: { seconds: FLOOD_MS / 1000, ...flood, holds, dropped, reports },
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

/**
 * The flooding node, as a separate process (bench/flood-sender.ts): as fast as the broker takes
 * it, junk with a validly signed report every fourth packet, until stopped.
 */
async function startFlooder(
  hub: Hub,
  bad: { keys: KeyPair; token: string },
): Promise<{ stop: () => Promise<Record<string, number>> }> {
  const args = {
    url: hub.busInfo.url,
    name: 'bad',
    token: bad.token,
    privateKeyPem: bad.keys.privateKey.export({ type: 'pkcs8', format: 'pem' }),
    fleet: hub.fleet,
    signedEvery: 4,
    burst: 650,
    window: 5_000,
  };
  const child = spawn(process.execPath, [join(here, 'flood-sender.js'), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let waiting: (() => void) | undefined;
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    waiting?.();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nextLine = async (): Promise<Record<string, number>> => {
    while (lines.length === 0) {
      const more = new Promise<void>((r) => {
        waiting = r;
      });
      if (
        (await Promise.race([more.then(() => 'line'), exited.then(() => 'exit')])) === 'exit' &&
        lines.length === 0
      )
        throw new Error('flood sender exited early');
    }
    return JSON.parse(lines.shift()!);
  };
  await nextLine();
  return {
    async stop() {
      child.kill('SIGTERM');
      const out = await nextLine();
      await exited;
      return out;
    },
  };
}

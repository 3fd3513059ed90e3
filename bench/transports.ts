import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AmqpTransport } from '../src/bus/amqp.js';
import { MqttClientTransport } from '../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../src/bus/mqtt-embedded.js';
import { NatsTransport } from '../src/bus/nats.js';
import type { Transport } from '../src/bus/transport.js';
import type { Emit } from './list.js';
import transportsHubs from './transports-hubs.js';

const AGENTS = 10;
const ROUNDS = 200;
const BURST = 3_000;
/** Distinct bytes per message, as envelopes are (JetStream drops identical bytes as a duplicate). */
let serial = 0;
const payload = () => {
  const b = Buffer.alloc(500, 0x61);
  b.write(String(serial++));
  return b;
};

interface Setup {
  name: string;
  /** A publisher (the hub) and AGENTS subscribers with persistent state (the agents). */
  clients(run: string): { pub: Transport; subs: Transport[] };
  cleanup?(): Promise<void>;
}

/**
 * The bus part of propagation, per transport side by side in one run: one decision published by
 * the hub to the moment the last of 10 agents (persistent subscriptions, acking after the
 * handler) has it, p50/p99 over 200 decisions one at a time; then a burst of 3,000 in windows
 * of 200, decisions/s until the last agent has the last one. Kernel commit and signature checks
 * are not included (see `propagation`). Brokers: the embedded one, Mosquitto at 127.0.0.1:1883,
 * NATS JetStream at :4222, RabbitMQ at :5672 (in a vhost made for the run). Then the hub half
 * (`transports-hubs.ts`): one hub against two on PostgreSQL, end to end with real agents.
 */
export default async function transportsBench(emit: Emit): Promise<void> {
  const id = randomBytes(4).toString('hex');
  const setups: Setup[] = [];
  const broker = new EmbeddedMqttBroker({ port: 0 });
  await broker.connect();
  const mqtt = (port: number, label: string) =>
    new MqttClientTransport({
      url: `mqtt://127.0.0.1:${port}`,
      clientId: `bench-${id}-${label}`,
      clean: true,
    });
  setups.push({
    name: 'embedded',
    clients: () => ({
      pub: broker,
      subs: Array.from({ length: AGENTS }, (_, i) => mqtt(broker.port!, `e${i}`)),
    }),
  });
  setups.push({
    name: 'mosquitto',
    clients: () => ({
      pub: mqtt(1883, 'mpub'),
      subs: Array.from({ length: AGENTS }, (_, i) => mqtt(1883, `m${i}`)),
    }),
  });
  const streams = (run: string) => [
    { name: `BENCH_${id}`, topics: [`${run}/#`], retention: 'limits' as const },
  ];
  let natsPub: NatsTransport | undefined;
  setups.push({
    name: 'nats-jetstream',
    clients: (run) => {
      const mk = (c: string) =>
        new NatsTransport({
          servers: ['nats://127.0.0.1:4222'],
          clientId: `bench-${id}-${c}`,
          streams: streams(run),
        });
      natsPub = mk('pub');
      return { pub: natsPub, subs: Array.from({ length: AGENTS }, (_, i) => mk(`n${i}`)) };
    },
    cleanup: async () => {
      await natsPub?.deleteStreams();
    },
  });
  const vhost = `rampart-bench-${id}`;
  let amqpReady = false;
  try {
    execFileSync('rabbitmqctl', ['add_vhost', vhost], { stdio: 'ignore' });
    execFileSync('rabbitmqctl', ['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*'], {
      stdio: 'ignore',
    });
    amqpReady = true;
  } catch (err) {
    emit({ bench: 'transports', note: `rabbitmq not measured: ${(err as Error).message}` });
  }
  if (amqpReady) {
    const url = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`;
    setups.push({
      name: 'rabbitmq',
      clients: () => ({
        pub: new AmqpTransport({ urls: [url], clientId: `bench-${id}-pub`, clean: true }),
        subs: Array.from(
          { length: AGENTS },
          (_, i) => new AmqpTransport({ urls: [url], clientId: `bench-${id}-a${i}` }),
        ),
      }),
      cleanup: async () => {
        execFileSync('rabbitmqctl', ['delete_vhost', vhost], { stdio: 'ignore' });
      },
    });
  }
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const s of setups) {
      try {
        rows.push({ transport: s.name, ...(await measure(s)) });
      } catch (err) {
        emit({ bench: 'transports', transport: s.name, note: `not measured: ${(err as Error).message}` });
      } finally {
        await s.cleanup?.().catch(() => undefined);
      }
    }
  } finally {
    await broker.close();
  }
  const base = rows.find((r) => r.transport === 'embedded');
  for (const r of rows) {
    emit({
      bench: 'transports',
      figure: 'bus only: hub publish -> last of 10 persistent subscribers, p50/p99 of 200; burst of 3,000',
      agents: AGENTS,
      ...r,
      goal: 'p99 <= 50 ms with 20 agents (end to end); >= 10,000 decisions/s',
      goalP99Ms: 50,
      ...(base ? { p99VsEmbedded: +((r.p99Ms as number) / (base.p99Ms as number)).toFixed(2) } : {}),
      ...(base
        ? {
            rateVsEmbedded: +((r.decisionsPerSecond as number) / (base.decisionsPerSecond as number)).toFixed(
              2,
            ),
          }
        : {}),
    });
  }
  await transportsHubs(emit);
}

async function measure(s: Setup): Promise<Record<string, number>> {
  const run = `rampart-bench/${randomBytes(4).toString('hex')}`;
  const topic = `${run}/decisions`;
  const { pub, subs } = s.clients(run);
  const counts = subs.map(() => 0);
  let wake: (() => void) | undefined;
  await Promise.all([pub, ...subs].map((t) => t.connect()));
  try {
    await Promise.all(
      subs.map((t, i) =>
        t.subscribe(topic, async () => {
          counts[i]!++;
          wake?.();
        }),
      ),
    );
    const allAt = (n: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`stalled at ${Math.min(...counts)} of ${n}`)),
          60_000,
        );
        const check = () => {
          if (counts.every((c) => c >= n)) {
            clearTimeout(timer);
            wake = undefined;
            resolve();
          }
        };
        wake = check;
        check();
      });
    const ms: number[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const t0 = process.hrtime.bigint();
      const got = allAt(i);
      await pub.publish(topic, payload());
      await got;
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    ms.sort((a, b) => a - b);
    const t0 = process.hrtime.bigint();
    const done = allAt(ROUNDS + BURST);
    for (let i = 0; i < BURST; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, BURST - i) }, () => pub.publish(topic, payload())),
      );
    }
    await done;
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      p50Ms: +ms[Math.floor(ROUNDS * 0.5)]!.toFixed(2),
      p99Ms: +ms[Math.floor(ROUNDS * 0.99)]!.toFixed(2),
      decisionsPerSecond: Math.round(BURST / sec),
    };
  } finally {
    for (const t of subs) await t.close();
    await pub.close().catch(() => undefined);
  }
}

import { randomUUID } from 'node:crypto';
import { MqttClientTransport } from '../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../src/bus/mqtt-embedded.js';
import type { Transport } from '../src/bus/transport.js';
import type { Emit } from './list.js';

/**
 * QoS 1 messages per second from one publisher to one persistent-session subscriber, through the
 * embedded broker (in-process publish, as the hub does, and over TCP) side by side with Mosquitto
 * on 127.0.0.1:1883 when it is running. Payloads are decision-envelope sized (500 bytes).
 */
export default async function busBench(emit: Emit): Promise<void> {
  const N = 10_000;
  const payload = Buffer.alloc(500, 0x61);
  const broker = new EmbeddedMqttBroker({ port: 0 });
  await broker.connect();
  const results: Record<string, number> = {};
  try {
    results.embeddedInProcess = await measure(broker, broker.port!, N, payload);
    const tcpPub = client(broker.port!, 'pub');
    await tcpPub.connect();
    results.embeddedTcp = await measure(tcpPub, broker.port!, N, payload);
    await tcpPub.close();
  } finally {
    await broker.close();
  }
  const mosq = client(1883, 'pub');
  try {
    await mosq.connect();
    results.mosquittoTcp = await measure(mosq, 1883, N, payload);
  } catch (err) {
    emit({ bench: 'bus', note: `mosquitto not measured: ${(err as Error).message}` });
  } finally {
    await mosq.close();
  }
  await latency(emit);
  for (const [path, perSecond] of Object.entries(results)) {
    emit({
      bench: 'bus',
      path,
      messages: N,
      messagesPerSecond: Math.round(perSecond),
      ...(results.mosquittoTcp ? { vsMosquitto: +(perSecond / results.mosquittoTcp).toFixed(2) } : {}),
    });
  }
}

function client(port: number, label: string): MqttClientTransport {
  return new MqttClientTransport({
    url: `mqtt://127.0.0.1:${port}`,
    clientId: `bench-${label}-${randomUUID().slice(0, 8)}`,
    clean: true,
    connectTimeoutMs: 3_000,
  });
}

async function measure(pub: Transport, port: number, n: number, payload: Buffer): Promise<number> {
  const topic = `rampart-bench/${randomUUID().slice(0, 8)}/decisions`;
  const sub = client(port, 'sub');
  await sub.connect();
  let got = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => {
    done = r;
  });
  await sub.subscribe(topic, () => {
    if (++got === n) done();
  });
  const t0 = process.hrtime.bigint();
  // Windows of 200 in flight, like a burst from the hub's decision log.
  for (let i = 0; i < n; i += 200) {
    await Promise.all(Array.from({ length: Math.min(200, n - i) }, () => pub.publish(topic, payload)));
  }
  await Promise.race([
    all,
    new Promise((_, rej) => setTimeout(() => rej(new Error(`got ${got} of ${n}`)), 60_000)),
  ]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  await sub.close();
  return n / s;
}

/**
 * One message at a time, publish to delivery, as a single decision travels: the hub publishing
 * in-process on the embedded broker to an agent over TCP, and a client publishing through
 * Mosquitto to another client.
 */
async function latency(emit: Emit): Promise<void> {
  const rounds = 500;
  const run = async (pub: Transport, port: number) => {
    const topic = `rampart-bench/${randomUUID().slice(0, 8)}/lat`;
    const sub = client(port, 'lat');
    await sub.connect();
    let arrived: (() => void) | undefined;
    await sub.subscribe(topic, () => arrived?.());
    const ms: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const got = new Promise<void>((r) => {
        arrived = r;
      });
      const t0 = process.hrtime.bigint();
      await pub.publish(topic, Buffer.alloc(500));
      await got;
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    await sub.close();
    ms.sort((a, b) => a - b);
    return { p50: ms[Math.floor(rounds * 0.5)]!, p99: ms[Math.floor(rounds * 0.99)]! };
  };
  const broker = new EmbeddedMqttBroker({ port: 0 });
  await broker.connect();
  let embedded: { p50: number; p99: number };
  try {
    embedded = await run(broker, broker.port!);
  } finally {
    await broker.close();
  }
  let mosquitto: { p50: number; p99: number } | undefined;
  const pub = client(1883, 'latpub');
  try {
    await pub.connect();
    mosquitto = await run(pub, 1883);
  } catch {
    mosquitto = undefined;
  } finally {
    await pub.close();
  }
  const round = (x: number) => +x.toFixed(2);
  emit({
    bench: 'bus-latency',
    rounds,
    embeddedP50Ms: round(embedded.p50),
    embeddedP99Ms: round(embedded.p99),
    ...(mosquitto
      ? {
          mosquittoP50Ms: round(mosquitto.p50),
          mosquittoP99Ms: round(mosquitto.p99),
          p99VsMosquitto: round(embedded.p99 / mosquitto.p99),
        }
      : {}),
  });
}

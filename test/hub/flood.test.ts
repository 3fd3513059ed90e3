import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { seal } from '../../src/trust/envelope.js';
import type { KeyPair } from '../../src/trust/keys.js';
import {
  droppedCount,
  nodeBusClient,
  onHubDecisions,
  reportBody,
  startTestHub,
  type TestHub,
  until,
} from './helpers.js';

/**
 * One compromised node floods the real embedded broker with junk and with validly signed reports
 * far over its budget, while an honest node reports 20 attackers during the flood: the budget
 * holds, every flood message is accounted for by reason, and every honest report reaches a
 * watching node. Fairness is asserted structurally (how many messages the intake served while an
 * honest one waited), not by the clock. The printed latencies include the flooding client's own
 * work, which runs in this process; `npm run bench -- flood` runs it in another and holds the goal.
 */
describe('a node flooding the bus', () => {
  let t: TestHub;
  let bad: { keys: KeyPair; token: string };
  let good: { keys: KeyPair; token: string };
  let badBus: MqttClientTransport;
  let goodBus: MqttClientTransport;
  let watcher: MqttClientTransport;
  const received = new Map<string, { d: Decision; at: number }>();
  const BURST = 50;

  beforeAll(async () => {
    // The fair queue and the budget alone; holding the flooder is tested in flood-hold.test.ts.
    t = await startTestHub({ policy: { rateBurst: BURST, ratePerMinute: 60 }, intake: { throttle: false } });
    bad = await t.enrol('bad');
    good = await t.enrol('good');
    const third = await t.enrol('watcher');
    badBus = await nodeBusClient(t, 'bad', bad.token);
    goodBus = await nodeBusClient(t, 'good', good.token);
    watcher = await nodeBusClient(t, 'watcher', third.token);
    await onHubDecisions(t, watcher, (d) => received.set(d.target, { d, at: performance.now() }));
  });
  afterAll(async () => {
    for (const c of [badBus, goodBus, watcher]) await c?.close();
    await t?.close();
  });

  const report = reportBody;
  const dropped = (reason: string) => droppedCount(t, reason);
  const reports = (result: string) => t.hub.metrics.value('rampart_hub_reports_total', { result });

  it('10,000 junk packets and 3,000 signed reports from one node: its budget holds, 20 honest reports are served', async () => {
    const JUNK = 10_000;
    const SIGNED = 3_000;
    const HONEST = 20;
    const topic = topics.reports('default', 'bad');
    const flood: Buffer[] = [];
    for (let i = 0; i < JUNK + SIGNED; i++) {
      // Junk and signed reports interleaved, as an attacker would mix them.
      if (i % 13 < 10) {
        flood.push(i % 3 === 0 ? Buffer.alloc(64, i & 0xff) : Buffer.from(`{"v":1,"junk":${i}`));
      } else {
        const n = i - 10 * Math.ceil(i / 13);
        const target = `2001:db8:bad:${(n >> 8).toString(16)}:${(n & 0xff).toString(16)}::1`;
        flood.push(seal('report', report(target), 'bad', bad.keys.privateKey));
      }
    }
    expect(flood.filter((b) => b.length > 100).length).toBe(SIGNED);

    // The flood goes out in 20 bursts, each followed by one honest report.
    const sent = new Map<string, number>();
    const pubs: Array<Promise<void>> = [];
    const per = Math.ceil(flood.length / HONEST);
    for (let k = 0; k < HONEST; k++) {
      for (const bytes of flood.slice(k * per, (k + 1) * per)) pubs.push(badBus.publish(topic, bytes));
      const target = `198.51.100.${100 + k}`;
      sent.set(target, performance.now());
      pubs.push(
        goodBus.publish(
          topics.reports('default', 'good'),
          seal('report', report(target), 'good', good.keys.privateKey),
        ),
      );
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pubs);
    await until(() => [...sent.keys()].every((a) => received.has(a)), 30_000);
    // Every flood message is accounted for once: dropped by reason, or verified and decided
    // (aedes acknowledges a publish before it reaches the hub's subscription, hence the wait).
    const accounted = async () =>
      (await dropped('malformed')) +
      (await dropped('queue-full')) +
      (await dropped('over-budget')) +
      (await reports('ban')) -
      HONEST +
      (await reports('rate-limited')) +
      (await reports('duplicate'));
    const end = Date.now() + 30_000;
    while ((await accounted()) < JUNK + SIGNED && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    await t.hub.intake.drain();
    await t.hub.core.drain();

    const latencies = [...sent].map(([a, at]) => received.get(a)!.at - at).sort((x, y) => x - y);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]!;
    const stats = t.hub.intake.stats();
    const g = stats.get('good')!;
    const b = stats.get('bad')!;
    const fromBad = [...received.values()].filter((x) => x.d.origin === 'bad').length;
    const figures = {
      malformed: await dropped('malformed'),
      queueFull: await dropped('queue-full'),
      overBudget: await dropped('over-budget'),
      bans: await reports('ban'),
      rateLimited: await reports('rate-limited'),
      duplicate: await reports('duplicate'),
    };
    console.log(
      `flood: ${JUNK} junk + ${SIGNED} signed from one node -> ${JSON.stringify(figures)}; ` +
        `bad queue peak ${b.peak}, served ${b.served}; ` +
        `honest ${HONEST} reports: latency p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, ` +
        `waited behind at most ${g.maxWaited} messages (queue peak ${g.peak})`,
    );

    // Every honest report became its own decision, from its node.
    for (const a of sent.keys()) expect(received.get(a)!.d.origin).toBe('good');
    expect(await accounted()).toBe(JUNK + SIGNED);
    // The budget: a burst plus what refills during the run (one a second at 60/min).
    expect(fromBad).toBeGreaterThan(0);
    expect(fromBad).toBeLessThanOrEqual(BURST + 60);
    // Most signed excess never cost a verify.
    expect(figures.overBudget + figures.queueFull).toBeGreaterThan(SIGNED / 2);
    // Fairness, structurally: the flood queued up (each burst of 650 arrives faster than it is
    // served), yet an honest message waited behind at most one flood message per message of its
    // own queue ahead of it (round-robin), never behind the flood's backlog.
    expect(b.peak).toBeGreaterThan(50);
    expect(g.maxWaited).toBeLessThanOrEqual(2 * g.peak);
    expect(g.maxWaited).toBeLessThan(b.peak);
  }, 90_000);
});

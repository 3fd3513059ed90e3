import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { seal } from '../../src/trust/envelope.js';
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
 * A node the hub keeps refusing is held: the embedded broker stops reading its connections, so a
 * flood costs the flooder its own buffers instead of the hub's CPU (ADR 0037). Shown with the real
 * broker and real clients: the flood stops being read during the hold, resumes after it (nothing
 * is lost on the way), honest reports are decided meanwhile, and an honest node's burst of
 * reports past its budget does not get it held.
 */
describe('the hub holding a node it keeps refusing', () => {
  let t: TestHub;
  const clients: MqttClientTransport[] = [];
  const decided = new Map<string, Decision>();
  const HOLD_MS = 2_500;

  beforeAll(async () => {
    t = await startTestHub({
      policy: { rateBurst: 20, ratePerMinute: 60 },
      intake: { throttle: { strikes: 50, refillPerSecond: 5, firstHoldMs: HOLD_MS, maxHoldMs: 2 * HOLD_MS } },
    });
    const watcher = await t.enrol('watcher');
    const w = await nodeBusClient(t, 'watcher', watcher.token);
    clients.push(w);
    await onHubDecisions(t, w, (d) => decided.set(d.target, d));
  });
  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await t?.close();
  });

  const holds = () => t.hub.metrics.value('rampart_hub_bus_holds_total', {});

  it('junk from one node: held after its strikes, nothing read during the hold, read again after; honest reports go on', async () => {
    const bad = await t.enrol('bad');
    const good = await t.enrol('good');
    const badBus = await nodeBusClient(t, 'bad', bad.token);
    const goodBus = await nodeBusClient(t, 'good', good.token);
    clients.push(badBus, goodBus);
    const JUNK = 3_000;
    const topic = topics.reports('default', 'bad');
    const flood = Array.from({ length: JUNK }, (_, i) =>
      badBus.publish(topic, Buffer.from(`{"v":1,"junk":${i}`)).catch(() => undefined),
    );
    const before = await holds();
    const deadline = Date.now() + 10_000;
    while ((await holds()) === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(await holds()).toBe(before + 1);
    const heldAt = Date.now();
    // What the broker had already read drains quickly; then the count must stand still.
    let read = await droppedCount(t, 'malformed');
    for (;;) {
      await new Promise((r) => setTimeout(r, 150));
      const now = await droppedCount(t, 'malformed');
      if (now === read) break;
      read = now;
    }
    // Honest reports while the flooder is held: all decided, from their node.
    const honest = ['198.51.100.61', '198.51.100.62', '198.51.100.63'];
    for (const a of honest)
      await goodBus.publish(
        topics.reports('default', 'good'),
        seal('report', reportBody(a), 'good', good.keys.privateKey),
      );
    await until(() => honest.every((a) => decided.has(a)), 5_000);
    for (const a of honest) expect(decided.get(a)!.origin).toBe('good');
    const stillHeld = HOLD_MS - (Date.now() - heldAt) - 300;
    if (stillHeld > 100) {
      await new Promise((r) => setTimeout(r, stillHeld));
      expect(await droppedCount(t, 'malformed')).toBe(read);
    }
    expect(read).toBeLessThan(JUNK);
    // The flooder's backlog is in its own buffers, not in the hub's queues.
    expect(await t.hub.metrics.value('rampart_hub_intake_queued_messages', {})).toBe(0);
    console.log(
      `held after ${read} of ${JUNK} junk packets had been read; nothing read for the rest of the ${HOLD_MS} ms hold`,
    );
    // After the hold the rest is read (and refused) again: the broker lost none of it.
    await until(() => Date.now() - heldAt > HOLD_MS, HOLD_MS + 1_000);
    const resumeDeadline = Date.now() + 5_000;
    while ((await droppedCount(t, 'malformed')) === read && Date.now() < resumeDeadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(await droppedCount(t, 'malformed')).toBeGreaterThan(read);
    await badBus.close();
    void Promise.allSettled(flood);
  }, 30_000);

  it('an honest node’s burst of signed reports far past its budget does not get it held', async () => {
    const busy = await t.enrol('busy');
    const bus = await nodeBusClient(t, 'busy', busy.token);
    clients.push(bus);
    const before = await holds();
    const overBefore = await droppedCount(t, 'over-budget');
    const N = 400;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        bus.publish(
          topics.reports('default', 'busy'),
          seal('report', reportBody(`2001:db8:b::${i.toString(16)}`), 'busy', busy.keys.privateKey),
        ),
      ),
    );
    await t.hub.intake.drain();
    await t.hub.core.drain();
    const over = (await droppedCount(t, 'over-budget')) - overBefore;
    expect(over).toBeGreaterThan(N / 2);
    expect(await holds()).toBe(before);
  }, 30_000);

  it('over HTTP too: a node posting junk gets 429 with Retry-After, before its body is read; another node is served', async () => {
    const bad = await t.enrol('httpbad');
    const good = await t.enrol('httpgood');
    const before = await holds();
    let answer = { status: 0, json: undefined as unknown, text: '' };
    for (let i = 0; i < 200 && answer.status !== 429; i++)
      answer = await t.call('POST', '/v1/reports', { v: 1, junk: i }, bad.token);
    expect(answer.status).toBe(429);
    expect(answer.json).toEqual({
      error: 'node httpbad is held: too many of its messages were refused',
      code: 'E_RATE',
    });
    expect(await holds()).toBe(before + 1);
    // Held: even a valid report waits; a body that is not JSON is not even parsed.
    const valid = seal('report', reportBody('198.51.100.71'), 'httpbad', bad.keys.privateKey);
    expect((await t.call('POST', '/v1/reports', valid.toString(), bad.token)).status).toBe(429);
    expect((await t.call('POST', '/v1/reports', '{not json', bad.token)).status).toBe(429);
    const res = await fetch(new URL('/v1/reports', t.hub.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${bad.token}`, 'content-type': 'application/json' },
      body: valid,
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const ok = await t.call(
      'POST',
      '/v1/reports',
      seal('report', reportBody('198.51.100.72'), 'httpgood', good.keys.privateKey).toString(),
      good.token,
    );
    expect(ok.status).toBe(200);
    expect((ok.json as { result: string }).result).toBe('ban');
  });
});

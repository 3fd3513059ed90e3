import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../src/trust/envelope.js';
import { generateKeyPair, type KeyPair } from '../../src/trust/keys.js';
import { droppedCount, reportBody, startTestHub, type TestHub } from './helpers.js';

/**
 * The order of the hub's checks on a bus message (ADR 0027): what costs little first, the decision
 * budget before the signature verify, and the budget charged only for verified reports.
 */
describe('bus intake: cheap checks and the budget before the verify', () => {
  let t: TestHub;
  let good: { keys: KeyPair; token: string };
  const BURST = 3;
  const stranger = generateKeyPair();

  beforeAll(async () => {
    t = await startTestHub({ policy: { rateBurst: BURST, ratePerMinute: 1 } });
    good = await t.enrol('good');
    await t.enrol('other');
  });
  afterAll(async () => {
    await t?.close();
  });

  const report = reportBody;
  const dropped = (reason: string) => droppedCount(t, reason);
  const send = (node: string, bytes: Buffer) => t.hub.core.handleBusMessage(node, bytes);

  it('forged reports in a node’s name never spend its budget', async () => {
    for (let i = 0; i < 50; i++) {
      await send('good', seal('report', report(`203.0.113.${i}`), 'good', stranger.privateKey));
    }
    expect(await dropped('bad-signature')).toBe(50);
    const head = await t.hub.store.head();
    for (let i = 0; i < BURST; i++) {
      await send('good', seal('report', report(`198.51.100.${i}`), 'good', good.keys.privateKey));
    }
    expect(await t.hub.store.head()).toBe(head + BURST);
  });

  it('once the budget is spent, reports are dropped before their signature is checked; heartbeats still count', async () => {
    const head = await t.hub.store.head();
    const badSig = await dropped('bad-signature');
    // A forged one is now dropped as over budget: no verify was spent on it.
    await send('good', seal('report', report('203.0.113.200'), 'good', stranger.privateKey));
    await send('good', seal('report', report('198.51.100.200'), 'good', good.keys.privateKey));
    expect(await dropped('over-budget')).toBe(2);
    expect(await dropped('bad-signature')).toBe(badSig);
    expect(await t.hub.store.head()).toBe(head);
    // Heartbeats have no decision budget.
    await send('good', seal('heartbeat', { lastSeq: head, version: 't' }, 'good', good.keys.privateKey));
    expect((await t.hub.store.getNode('good'))?.lastSeq).toBe(head);
  });

  it('a sender other than the topic’s node, junk, and unknown kinds are dropped before any verify', async () => {
    const badSig = await dropped('bad-signature');
    // Signed by nobody's key, naming `good` on `other`'s topic: refused for the topic alone.
    await send('other', seal('report', report('203.0.113.201'), 'good', stranger.privateKey));
    await send('other', Buffer.from('{"v":1,'));
    await send('other', seal('decision', { target: '203.0.113.202' }, 'other', stranger.privateKey));
    expect(await dropped('topic-mismatch')).toBe(1);
    expect(await dropped('malformed')).toBe(1);
    expect(await dropped('wrong-kind')).toBe(1);
    expect(await dropped('bad-signature')).toBe(badSig);
  });

  it('a topic that names no node, and an oversized message, are refused before queueing', async () => {
    await t.hub.intake.take('rampart/default/reports/bad+name', Buffer.from('{}'));
    await t.hub.intake.take('rampart/default/reports/other', Buffer.alloc(65 * 1024, 0x20));
    expect(await dropped('topic-mismatch')).toBe(2);
    expect(await dropped('too-large')).toBe(1);
    expect(t.hub.intake.stats().has('other')).toBe(false);
  });
});

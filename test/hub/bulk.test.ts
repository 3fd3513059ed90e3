import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDecision } from '../../src/agent/decision-check.js';
import type { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import type { Decision } from '../../src/core/decision.js';
import { PACKED_DECISIONS, unpackDecisions } from '../../src/core/packed-decisions.js';
import {
  type Envelope,
  open,
  type PeekedEnvelope,
  peek,
  ReplayCache,
  seal,
} from '../../src/trust/envelope.js';
import type { KeyPair } from '../../src/trust/keys.js';
import { nodeBusClient, startTestHub, type TestHub, until } from './helpers.js';

/** `n` distinct documentation-range-free test addresses: 198.18.0.0/15 (benchmarking). */
const addrs = (n: number, base = 0) =>
  Array.from({ length: n }, (_, i) => `198.18.${(base + i) >> 8}.${(base + i) & 255}`);

/** A node's report of five sshd failures by `target`, as agents send them. */
const sshdReport = (target: string) => ({
  target,
  rule: 'sshd',
  reason: '',
  hits: 5,
  duration: 600,
  at: Date.now(),
});

describe('POST /v1/decisions/bulk', () => {
  let t: TestHub;
  let client: MqttClientTransport;
  let watcher: { keys: KeyPair; token: string };
  const envelopes: Envelope[] = [];

  beforeAll(async () => {
    t = await startTestHub();
    watcher = await t.enrol('bulk-watch');
    client = await nodeBusClient(t, 'bulk-watch', watcher.token);
    const replay = new ReplayCache();
    await client.subscribe(topics.decisions('default'), (_topic, payload) => {
      const r = open(payload, {
        keyFor: (f) => (f === 'hub' ? t.hub.publicKey : undefined),
        replay,
        expectKind: ['decision', 'decisions', PACKED_DECISIONS],
        maxBytes: 1024 * 1024,
      });
      if (r.ok) envelopes.push(r.env);
      else throw new Error(`hub envelope refused: ${r.reason}`);
    });
  });
  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  it('applies the valid items with consecutive seqs and reports the bad ones by index', async () => {
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: [
        { target: '192.0.2.1', duration: '12h', reason: 'list A' },
        { target: 'not-an-address' },
        { target: '2001:DB8::/64', duration: 'permanent' },
        { target: '192.0.2.2', duration: 'soon' },
        { target: '0.0.0.0/0' },
        { target: '192.0.2.3', colour: 'red' },
        { target: '192.0.2.4', set: 'bad set!' },
        'just a string',
        { target: '192.0.2.5', duration: 600 },
      ],
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({
      added: 3,
      duplicates: 0,
      head: head0 + 3,
      firstSeq: head0 + 1,
      lastSeq: head0 + 3,
    });
    expect(r.json.errors.map((e: { index: number }) => e.index)).toEqual([1, 3, 4, 5, 6, 7]);
    const byIndex = Object.fromEntries(
      r.json.errors.map((e: { index: number; error: string; code: string }) => [e.index, e]),
    );
    expect(byIndex[1]).toMatchObject({ code: 'E_ADDRESS' });
    expect(byIndex[3]).toMatchObject({ code: 'E_DURATION' });
    expect(byIndex[4]).toMatchObject({ code: 'E_UNBANNABLE' });
    expect(byIndex[5].error).toMatch(/unknown field colour/);
    expect(byIndex[6].error).toMatch(/not a valid set name/);

    const page = await t.call('GET', `/v1/decisions?since=${head0}`);
    expect(page.json.decisions.map((d: Decision) => [d.seq, d.target, d.duration])).toEqual([
      [head0 + 1, '192.0.2.1', 43200],
      [head0 + 2, '2001:db8::/64', null],
      [head0 + 3, '192.0.2.5', 600],
    ]);
    expect(page.json.decisions[0].reason).toBe('list A');
  });

  it('keeps the allowlist and de-duplication for every item', async () => {
    expect((await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.128/25' })).status).toBe(201);
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: [
        { target: '192.0.2.10', duration: 3600 },
        { target: '192.0.2.200', duration: 3600 },
        { target: '192.0.2.10', duration: 3600 },
        // In force from the first test with 12h: an hour more would not lengthen it.
        { target: '192.0.2.1', duration: 3600 },
        { target: '192.0.2.130/31' },
      ],
    });
    expect(r.json).toMatchObject({ added: 1, duplicates: 2, head: head0 + 1 });
    expect(r.json.errors).toEqual([
      expect.objectContaining({
        index: 1,
        code: 'E_UNBANNABLE',
        error: expect.stringMatching(/allowlisted \(192\.0\.2\.128\/25\)/),
      }),
      expect.objectContaining({ index: 4, code: 'E_UNBANNABLE' }),
    ]);
    const blocklist = (await t.call('GET', '/v1/blocklist')).text.split('\n');
    expect(blocklist).toContain('192.0.2.10');
    expect(blocklist).not.toContain('192.0.2.200');
  });

  it('publishes a large import as few signed envelopes, in seq order, none over 500', async () => {
    await until(() => envelopes.length > 0);
    envelopes.length = 0;
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: addrs(1200).map((target) => ({ target, duration: 3600, reason: 'feed' })),
    });
    expect(r.json).toMatchObject({ added: 1200, errors: [], firstSeq: head0 + 1, lastSeq: head0 + 1200 });
    const seqs = () =>
      envelopes
        .flatMap((e) => (e.kind === 'decisions' ? (e.body as Decision[]) : [e.body as Decision]))
        .map((d) => d.seq);
    await until(() => seqs().length >= 1200);
    expect(seqs()).toEqual(Array.from({ length: 1200 }, (_, i) => head0 + 1 + i));
    expect(envelopes.length).toBeLessThanOrEqual(4);
    for (const e of envelopes) {
      expect(e.kind).toBe('decisions');
      expect((e.body as unknown[]).length).toBeLessThanOrEqual(500);
    }
  });

  it('publishes reports decided together (the live path) as one `decisions` envelope', async () => {
    await until(() => envelopes.length > 0);
    const settled = envelopes.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(envelopes.length).toBe(settled);
    envelopes.length = 0;
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    const report = (i: number) => sshdReport(`203.0.113.${i}`);
    // Reports arriving in one event-loop turn, as a flood seen by many nodes does.
    const outcomes = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => t.hub.core.report('bulk-watch', report(i))),
    );
    expect(outcomes.map((o) => o.decision?.seq)).toEqual([1, 2, 3, 4, 5].map((i) => head0 + i));
    await until(() => envelopes.length > 0);
    await new Promise((r) => setTimeout(r, 100));
    expect(envelopes).toHaveLength(1);
    expect(envelopes[0]!.kind).toBe('decisions');
    expect((envelopes[0]!.body as Decision[]).map((d) => d.target)).toEqual(
      [1, 2, 3, 4, 5].map((i) => `203.0.113.${i}`),
    );
  });

  it('counts every decision of a batch under its own action and origin', async () => {
    const count = (origin: string) =>
      t.hub.metrics.value('rampart_hub_decisions_total', { action: 'ban', origin });
    const [a0, b0, op0] = [await count('count-a'), await count('count-b'), await count('operator')];
    const report = (i: number) => sshdReport(`198.51.100.${i}`);
    // Decided together, origins interleaved: a, b, a, a, b.
    await Promise.all(
      (['count-a', 'count-b', 'count-a', 'count-a', 'count-b'] as const).map((node, i) =>
        t.hub.core.report(node, report(i + 1)),
      ),
    );
    expect((await count('count-a')) - a0).toBe(3);
    expect((await count('count-b')) - b0).toBe(2);
    const r = await t.call('POST', '/v1/decisions/bulk', {
      decisions: Array.from({ length: 1_200 }, (_, i) => ({
        target: `2001:db8:c0::${(i + 1).toString(16)}`,
      })),
    });
    expect(r.json.added).toBe(1_200);
    expect((await count('operator')) - op0).toBe(1_200);
    // The next test clears the envelopes and counts its own: none of this one's may come later.
    // They are published in seq order, so the last one's arrival means all have.
    const lastOf = (e: Envelope) => {
      const b = e.body as { seq: number; n?: number } | Array<{ seq: number }>;
      return Array.isArray(b) ? b.at(-1)!.seq : b.seq + (b.n ?? 1) - 1;
    };
    await until(() => envelopes.some((e) => lastOf(e) >= (r.json.lastSeq as number)));
  });

  it('packs runs as `decisions-packed` only while every enrolled node says it reads them', async () => {
    const heartbeat = async (name: string, keys: KeyPair, reads: string[]) => {
      const env = seal('heartbeat', { lastSeq: 0, active: 0, version: 't', reads }, name, keys.privateKey);
      await t.hub.core.admit(name, (peek(env) as { ok: true; env: PeekedEnvelope }).env);
    };
    const post = async (base: number) => {
      await until(() => envelopes.length > 0);
      envelopes.length = 0;
      const r = await t.call('POST', '/v1/decisions/bulk', {
        decisions: addrs(700, base).map((target, i) => ({ target, duration: i < 350 ? 600 : 3600 })),
      });
      const { firstSeq, lastSeq } = r.json as { firstSeq: number; lastSeq: number };
      const decisions = (e: Envelope) =>
        (e.kind === PACKED_DECISIONS ? unpackDecisions(e.body) : (e.body as unknown[]))!.map((d) =>
          checkDecision(structuredClone(d)),
        );
      await until(() => envelopes.flatMap(decisions).length >= 700);
      const page = await t.call('GET', `/v1/decisions?since=${firstSeq - 1}&limit=700`);
      // The same decisions either way, ids aside (a packed run leaves them out).
      const sent = envelopes.flatMap(decisions).map((d) => ({ ...d, id: '' }));
      expect(sent).toEqual((page.json.decisions as Decision[]).map((d) => ({ ...d, id: '' })));
      expect(sent.at(-1)!.seq).toBe(lastSeq);
      return envelopes.map((e) => e.kind);
    };

    expect(await post(4000)).toEqual(['decisions', 'decisions']);
    await heartbeat('bulk-watch', watcher.keys, ['decisions-packed']);
    expect(await post(5000)).toEqual([PACKED_DECISIONS, PACKED_DECISIONS]);
    // Two durations: the packed run carries `duration` and `expiresAt` per decision, the rest once.
    const first = envelopes[0]!.body as Record<string, unknown>;
    expect(first).toMatchObject({
      n: 500,
      action: 'ban',
      set: 'blocklist',
      reason: 'manual ban',
      origin: 'operator',
    });
    expect(Array.isArray(first.duration) && Array.isArray(first.target)).toBe(true);
    expect(first.id).toBeUndefined();

    // A node that never said so (a new one, or an old version) keeps the fleet on `decisions`.
    const other = await t.enrol('bulk-old');
    expect(await post(6000)).toEqual(['decisions', 'decisions']);
    await heartbeat('bulk-old', other.keys, []);
    expect(await post(7000)).toEqual(['decisions', 'decisions']);
    await heartbeat('bulk-old', other.keys, ['decisions-packed']);
    expect(await post(8000)).toEqual([PACKED_DECISIONS, PACKED_DECISIONS]);
    const metrics = (await t.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/rampart_hub_decision_envelopes_total\{kind="decisions-packed"\} 4/);
    await t.call('DELETE', '/v1/nodes/bulk-old');
    await heartbeat('bulk-watch', watcher.keys, []);
    expect(await post(9000)).toEqual(['decisions', 'decisions']);

    // A node heard only through another hub on the same store (its heartbeat recorded there, not
    // here): the run that went unpacked for want of it makes this hub read the store, and the next
    // runs pack without waiting for the shared refresh every 10 s (ADR 0074).
    await heartbeat('bulk-watch', watcher.keys, ['decisions-packed']);
    await t.enrol('bulk-elsewhere');
    await t.hub.store.touchNode('bulk-elsewhere', { lastSeen: Date.now(), reads: PACKED_DECISIONS });
    expect(await post(10_000)).toEqual(['decisions', 'decisions']);
    expect(await post(11_000)).toEqual([PACKED_DECISIONS, PACKED_DECISIONS]);
  });

  it('refuses a body that is not a list, or a list over the cap, as a whole', async () => {
    expect((await t.call('POST', '/v1/decisions/bulk', { decisions: { target: '192.0.2.9' } })).status).toBe(
      400,
    );
    expect((await t.call('POST', '/v1/decisions/bulk', {})).json.error).toMatch(/decisions/);
    const big = await t.call('POST', '/v1/decisions/bulk', {
      decisions: Array.from({ length: 100_001 }, () => ({})),
    });
    expect(big.status).toBe(400);
    const node = await t.enrol('bulk-node');
    expect((await t.call('POST', '/v1/decisions/bulk', { decisions: [] }, node.token)).status).toBe(403);
  });
});

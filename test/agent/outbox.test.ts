import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HubApi } from '../../src/agent/hub-api.js';
import { Outbox, type OutboxOptions, type ReportBody } from '../../src/agent/outbox.js';
import { AgentState } from '../../src/agent/state.js';
import { silentLogger } from '../../src/core/logger.js';
import { open, ReplayCache } from '../../src/trust/envelope.js';
import { generateKeyPair } from '../../src/trust/keys.js';

/** A real HTTP endpoint standing in for the hub's POST /v1/reports; it checks each signature. */
async function fakeHub(keys: ReturnType<typeof generateKeyPair>) {
  const got: ReportBody[] = [];
  const replay = new ReplayCache();
  let status = 200;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (status !== 200) {
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"down","code":"E_HTTP"}');
        return;
      }
      const r = open(Buffer.concat(chunks), {
        keyFor: (f) => (f === 'web1' ? keys.publicKey : undefined),
        replay,
      });
      if (!r.ok || req.headers.authorization !== 'Bearer node-token') {
        res.writeHead(400).end('{"error":"refused"}');
        return;
      }
      got.push(r.env.body as ReportBody);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":"ban"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    got,
    url,
    setStatus: (s: number) => {
      status = s;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const report = (n: number): ReportBody => ({
  target: `192.0.2.${n}`,
  rule: 'sshd',
  reason: 'test',
  hits: 5,
  duration: 600,
  at: Date.now(),
  set: 'blocklist',
});

describe('agent outbox', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  /** A fake hub and an outbox posting to it, signing with `signer` (default: the hub's node key). */
  async function boxFor(extra: Partial<OutboxOptions> = {}, signer?: ReturnType<typeof generateKeyPair>) {
    const keys = generateKeyPair();
    const hub = await fakeHub(keys);
    cleanup.push(hub.close);
    const dir = mkdtempSync(join(tmpdir(), 'rampart-outbox-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const state = AgentState.open(dir);
    const api = new HubApi(hub.url, 'node-token', 2000);
    const box = new Outbox({
      state,
      node: 'web1',
      privateKey: (signer ?? keys).privateKey,
      topic: 'unused',
      post: (env) => api.report(env),
      log: silentLogger(),
      retryMs: 30,
      ...extra,
    });
    cleanup.push(async () => {
      await box.close();
      state.close();
    });
    return { hub, box };
  }

  it('keeps reports made while the hub is down, across a restart, and delivers them in order once back', async () => {
    const keys = generateKeyPair();
    const hub = await fakeHub(keys);
    cleanup.push(hub.close);
    const dir = mkdtempSync(join(tmpdir(), 'rampart-outbox-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const api = new HubApi(hub.url, 'node-token', 2000);
    const make = (state: AgentState) =>
      new Outbox({
        state,
        node: 'web1',
        privateKey: keys.privateKey,
        topic: 'unused',
        post: (env) => api.report(env),
        log: silentLogger(),
        retryMs: 30,
      });

    hub.setStatus(503);
    let state = AgentState.open(dir);
    let box = make(state);
    for (let i = 1; i <= 5; i++) box.push(report(i));
    await box.kick();
    expect(hub.got).toEqual([]);
    expect(box.pending()).toBe(5);
    await box.close();
    state.close();

    // Restart while still down, add more, then the hub comes back.
    state = AgentState.open(dir);
    box = make(state);
    cleanup.push(async () => {
      await box.close();
      state.close();
    });
    box.push(report(6));
    hub.setStatus(200);
    await expect.poll(() => hub.got.length, { timeout: 3000 }).toBe(6);
    expect(hub.got.map((r) => r.target)).toEqual([1, 2, 3, 4, 5, 6].map((n) => `192.0.2.${n}`));
    // The hub records a report before its answer reaches the outbox, which then deletes it.
    await expect.poll(() => box.pending(), { timeout: 3000 }).toBe(0);
  });

  it('drops a report the hub refuses as invalid instead of blocking the queue behind it', async () => {
    // Signed with a key the hub does not know: 400, a refusal.
    const { hub, box } = await boxFor({}, generateKeyPair());
    box.push(report(1));
    await box.kick();
    expect(box.pending()).toBe(0);
    expect(hub.got).toEqual([]);
  });
  it('hands reports to a hub in the same process unsealed, and goes over HTTP when the hand-over throws', async () => {
    const handed: ReportBody[] = [];
    const answers: string[] = [];
    let refuse = false;
    const { hub, box } = await boxFor({
      handOver: async (body) => {
        if (refuse) throw new Error('node web1 is not enrolled here');
        handed.push(body);
        return { result: 'refused', refusal: 'allowlisted', reason: 'allowlisted' };
      },
      onAnswer: (body, answer) => answers.push(`${body.target} ${answer.result}`),
    });
    box.push(report(1));
    await expect.poll(() => box.pending(), { timeout: 3000 }).toBe(0);
    // Taken as stored, not through the HTTP endpoint; its answer reaches the agent as over HTTP.
    expect(handed.map((r) => r.target)).toEqual(['192.0.2.1']);
    expect(hub.got).toEqual([]);
    expect(answers).toEqual(['192.0.2.1 refused']);

    refuse = true;
    box.push(report(2));
    await expect.poll(() => hub.got.map((r) => r.target), { timeout: 3000 }).toEqual(['192.0.2.2']);
    await expect.poll(() => box.pending(), { timeout: 3000 }).toBe(0);
    expect(handed).toHaveLength(1);
  });
});

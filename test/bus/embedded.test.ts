import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { topics } from '../../src/bus/transport.js';
import { requirements } from '../helpers/requirements.js';
import { Inbox, waitUntil } from './contract.js';

const run = promisify(execFile);
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

async function startBroker(opts: ConstructorParameters<typeof EmbeddedMqttBroker>[0] = {}) {
  const broker = new EmbeddedMqttBroker({ port: 0, ...opts });
  closers.push(() => broker.close());
  await broker.connect();
  return broker;
}

function agent(
  port: number,
  node: string,
  extra: Partial<ConstructorParameters<typeof MqttClientTransport>[0]> = {},
) {
  const t = new MqttClientTransport({
    url: `mqtt://127.0.0.1:${port}`,
    clientId: `rt-${node}`,
    connectTimeoutMs: 5_000,
    ...extra,
  });
  closers.push(() => t.close());
  return t;
}

/** mosquitto_pub as the real peer; resolves with its exit code and stderr. */
async function mosquittoPub(port: number, topic: string, message: string, args: string[] = []) {
  try {
    await run(
      'mosquitto_pub',
      ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', message, ...args],
      {
        timeout: 10_000,
      },
    );
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

const settle = (ms = 800) => new Promise((r) => setTimeout(r, ms));

describe('embedded broker', () => {
  it('embedded - the hub publishes in-process and an agent over TCP receives it; an agent report reaches the hub', async () => {
    const fleet = `f${randomUUID().slice(0, 8)}`;
    const hub = await startBroker();
    const hubInbox = new Inbox();
    await hub.subscribe(topics.allReports(fleet), hubInbox.handler);
    const web1 = agent(hub.port!, `${fleet}-web1`);
    await web1.connect();
    const agentInbox = new Inbox();
    await web1.subscribe(topics.decisions(fleet), agentInbox.handler);
    await hub.publish(topics.decisions(fleet), Buffer.from('d1'));
    await web1.publish(topics.reports(fleet, 'web1'), Buffer.from('r1'));
    await agentInbox.waitFor(1);
    await hubInbox.waitFor(1);
    expect(agentInbox.got[0]).toMatchObject({ topic: topics.decisions(fleet), payload: 'd1' });
    expect(hubInbox.got[0]).toMatchObject({ topic: topics.reports(fleet, 'web1'), payload: 'r1' });
  });

  it('embedded - a decision the hub publishes while an agent is offline is delivered when it reconnects', async () => {
    const fleet = `f${randomUUID().slice(0, 8)}`;
    const hub = await startBroker();
    const first = agent(hub.port!, `${fleet}-web2`);
    await first.connect();
    await first.subscribe(topics.decisions(fleet), () => undefined);
    await first.close();
    await hub.publish(topics.decisions(fleet), Buffer.from('while-away'));
    const again = agent(hub.port!, `${fleet}-web2`);
    const inbox = new Inbox();
    await again.connect();
    await again.subscribe(topics.decisions(fleet), inbox.handler);
    await inbox.waitFor(1);
    expect(inbox.got.map((m) => m.payload)).toEqual(['while-away']);
  });

  it('embedded - port taken: one clear error naming the port and how to change it', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => blocker.close(r)));
    const port = (blocker.address() as { port: number }).port;
    const broker = new EmbeddedMqttBroker({ port });
    closers.push(() => broker.close());
    const err = await broker.connect().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'E_BUS' });
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: the port is already in use`));
    expect((err as Error).message).toMatch(/bus\.port.*--broker-port/);
  });

  it('embedded - close is idempotent and publishing after close fails with E_BUS', async () => {
    const hub = await startBroker();
    const statuses: string[] = [];
    hub.onStatus((s) => statuses.push(s));
    await hub.close();
    await hub.close();
    expect(statuses).toEqual(['down']);
    await expect(hub.publish('rampart/x/decisions', Buffer.from('x'))).rejects.toMatchObject({
      code: 'E_BUS',
    });
  });
});

const peer = requirements('bus: embedded broker vs mosquitto_pub', ['cmd:mosquitto_pub']);

describe.skipIf(peer.skip)('embedded broker authorization (mosquitto_pub as the peer)', () => {
  it('embedded - a network client cannot publish on the decisions topic; reports still flow', async () => {
    const fleet = `f${randomUUID().slice(0, 8)}`;
    const hub = await startBroker();
    const hubDecisions = new Inbox();
    await hub.subscribe(topics.decisions(fleet), hubDecisions.handler);
    const web1 = agent(hub.port!, `${fleet}-web1`);
    await web1.connect();
    const agentDecisions = new Inbox();
    await web1.subscribe(topics.decisions(fleet), agentDecisions.handler);
    const hubReports = new Inbox();
    await hub.subscribe(topics.allReports(fleet), hubReports.handler);

    await mosquittoPub(hub.port!, topics.decisions(fleet), 'forged');
    await mosquittoPub(hub.port!, `rampart/${fleet}/anything`, 'forged');
    // The control: the same peer may publish a report, so silence above is the refusal.
    const ok = await mosquittoPub(hub.port!, topics.reports(fleet, 'web9'), 'report');
    expect(ok.code).toBe(0);
    await hubReports.waitFor(1);
    await settle();
    expect(hubDecisions.got).toEqual([]);
    expect(agentDecisions.got).toEqual([]);
    expect(hubReports.got.map((m) => m.payload)).toEqual(['report']);
  });

  it('embedded - with authentication, wrong credentials are refused and a node publishes only as itself', async () => {
    const fleet = `f${randomUUID().slice(0, 8)}`;
    const tokens = new Map([
      ['web1', 'tok-1'],
      ['web2', 'tok-2'],
    ]);
    const hub = await startBroker({ authenticate: (u, p) => tokens.get(u) === p });
    const reports = new Inbox();
    await hub.subscribe(topics.allReports(fleet), reports.handler);

    const anon = await mosquittoPub(hub.port!, topics.reports(fleet, 'web1'), 'anon');
    expect(anon.code).not.toBe(0);
    const wrong = await mosquittoPub(hub.port!, topics.reports(fleet, 'web1'), 'wrong', [
      '-u',
      'web1',
      '-P',
      'tok-2',
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/bad user name or password|not authori[sz]ed/i);
    await mosquittoPub(hub.port!, topics.reports(fleet, 'web2'), 'spoof', ['-u', 'web1', '-P', 'tok-1']);
    const good = await mosquittoPub(hub.port!, topics.reports(fleet, 'web1'), 'mine', [
      '-u',
      'web1',
      '-P',
      'tok-1',
    ]);
    expect(good.code).toBe(0);
    await reports.waitFor(1);
    await settle();
    expect(reports.got.map((m) => [m.topic, m.payload])).toEqual([[topics.reports(fleet, 'web1'), 'mine']]);

    // The agent transport with its node token connects and may read decisions.
    const web1 = agent(hub.port!, `${fleet}-auth-web1`, { username: 'web1', password: 'tok-1' });
    await web1.connect();
    const inbox = new Inbox();
    await web1.subscribe(topics.decisions(fleet), inbox.handler);
    await hub.publish(topics.decisions(fleet), Buffer.from('d'));
    await inbox.waitFor(1);
    // ...but not other nodes' reports.
    await expect(web1.subscribe(topics.allReports(fleet), () => undefined)).rejects.toMatchObject({
      code: 'E_AUTH',
    });
    // A publish the broker refuses (as another node) fails after the timeout instead of being resent
    // after every reconnect; the connection then settles and publishing as itself works.
    const spoofer = agent(hub.port!, `${fleet}-auth-spoof`, {
      username: 'web1',
      password: 'tok-1',
      publishTimeoutMs: 1_000,
      minReconnectMs: 50,
    });
    await spoofer.connect();
    await expect(spoofer.publish(topics.reports(fleet, 'web2'), Buffer.from('x'))).rejects.toThrow(
      /no PUBACK within 1000 ms/,
    );
    await waitUntil(() => (spoofer as MqttClientTransport).connected, 'reconnect');
    await spoofer.publish(topics.reports(fleet, 'web1'), Buffer.from('after'));
    await reports.waitFor(2);
    expect(reports.got.map((m) => m.payload)).toEqual(['mine', 'after']);
    const bad = agent(hub.port!, `${fleet}-auth-bad`, { username: 'web1', password: 'nope' });
    await expect(bad.connect()).rejects.toMatchObject({ code: 'E_AUTH' });
  });
});

describe('mqtt client lifecycle', () => {
  it('mqtt client - concurrent connects share one connection; close during connect leaves nothing running', async () => {
    const hub = await startBroker();
    const t = agent(hub.port!, `lc-${randomUUID().slice(0, 8)}`, { clean: true });
    await Promise.all([t.connect(), t.connect(), t.connect()]);
    expect(hub.clients).toBe(1);
    const u = agent(hub.port!, `lc-${randomUUID().slice(0, 8)}`, { clean: true });
    const pending = u.connect().catch((e: unknown) => e);
    await u.close();
    expect(await pending).toMatchObject({ code: 'E_BUS' });
    await settle(300);
    expect(hub.clients).toBe(1);
  });

  it('mqtt client - an unreachable broker: connect rejects after its timeout, retries, then comes up', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    await new Promise((r) => blocker.close(r));
    const t = agent(port, `ur-${randomUUID().slice(0, 8)}`, {
      clean: true,
      connectTimeoutMs: 500,
      minReconnectMs: 50,
      maxReconnectMs: 100,
    });
    const statuses: string[] = [];
    t.onStatus((s) => statuses.push(s));
    await expect(t.connect()).rejects.toThrow(
      /cannot reach MQTT broker mqtt:\/\/127\.0\.0\.1:\d+ within 500 ms/,
    );
    const late = new EmbeddedMqttBroker({ port });
    closers.push(() => late.close());
    await late.connect();
    await waitUntil(() => statuses.includes('up'), 'a later up');
  });
});

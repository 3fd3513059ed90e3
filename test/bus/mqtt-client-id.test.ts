import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MqttClientTransport } from '../../src/bus/mqtt-client.js';
import { topics } from '../../src/bus/transport.js';
import { lineLogger } from '../../src/core/logger.js';
import { type Hub, startHub } from '../../src/hub/hub.js';
import { requirements } from '../helpers/requirements.js';

const URL = 'mqtt://127.0.0.1:1883';
const req = requirements('bus: client ids on a shared Mosquitto', ['tcp:1883']);

/** A logger whose lines the test can wait for. */
function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  const log = lineLogger((s: string) => {
    lines.push(JSON.parse(s));
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, what: string, ms = 20_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
        } else waiters.push(check);
      };
      check();
    });
  return { log, lines, waitFor };
}

/** Drops the persistent session a test left on the shared broker, and the hub's retained presence. */
async function clearSession(clientId: string, fleet?: string): Promise<void> {
  const t = new MqttClientTransport({ url: URL, clientId, clean: true });
  await t.connect();
  if (fleet) await t.publish(`rampart/${fleet}/hubs/${clientId}`, Buffer.alloc(0), { retain: true });
  await t.close();
}

describe.skipIf(req.skip)('bus: client ids on a shared Mosquitto', () => {
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await Promise.resolve(fn()).catch(() => undefined);
  });

  it('two hubs of one fleet configured alike keep their own sessions: neither evicts the other', async () => {
    const fleet = `cid${randomBytes(4).toString('hex')}`;
    const bus = { type: 'mqtt' as const, url: URL };
    const hubs: Hub[] = [];
    const downs = [0, 0];
    for (const i of [0, 1]) {
      const dir = mkdtempSync(join(tmpdir(), `rampart-cid-hub${i}-`));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const hub = await startHub({ dataDir: dir, fleet, bus, listen: '127.0.0.1', apiPort: 0 });
      cleanup.push(() => hub.close());
      hub.bus.onStatus((s) => {
        if (s === 'down') downs[i]!++;
      });
      hubs.push(hub);
      const id = readFileSync(join(dir, 'hub', 'hub.id'), 'utf8').trim();
      const clientId = (hub.bus as unknown as { opts: { clientId: string } }).opts.clientId;
      expect(clientId).toBe(`rampart-${fleet}-hub-${id}`);
      cleanup.push(() => clearSession(clientId, fleet));
    }
    expect(hubs[0]!.bus).not.toBe(hubs[1]!.bus);

    // Both publish through their own connection: a ban on each reaches a subscriber at once.
    const sub = new MqttClientTransport({ url: URL, clientId: `${fleet}-watch`, clean: true });
    cleanup.push(() => sub.close());
    const seen: Buffer[] = [];
    let arrived: () => void = () => undefined;
    await sub.subscribe(topics.decisions(fleet), (_t, payload) => {
      seen.push(payload);
      arrived();
    });
    await sub.connect();
    for (const [i, hub] of hubs.entries()) {
      const got = new Promise<void>((r) => {
        arrived = r;
      });
      await hub.core.ban({ target: `2001:db8:c1d::${i + 1}`, duration: 3600 });
      await got;
    }
    expect(seen).toHaveLength(2);
    // Under one client id the second hub's connection would have closed the first one's.
    expect(downs).toEqual([0, 0]);
    for (const hub of hubs) expect((hub.bus as MqttClientTransport).connected).toBe(true);
  });

  it('two clients given one bus.clientId: the eviction loop is named in one error line', async () => {
    const clientId = `cid-dup-${randomBytes(4).toString('hex')}`;
    const logs = [capture(), capture()];
    const clients = logs.map(({ log }) => new MqttClientTransport({ url: URL, clientId, logger: log }));
    for (const c of clients) cleanup.push(() => c.close());
    cleanup.push(() => clearSession(clientId));
    await clients[0]!.connect();
    await clients[1]!.connect();
    const named = (l: Record<string, unknown>) => l.clientId === clientId && l.level === 50;
    // Whichever of the two notices first: each is evicted by the other in turn.
    const line = await Promise.race(logs.map((c) => c.waitFor(named, 'the duplicate client id error')));
    expect(line.msg).toMatch(/same client id.*bus\.clientId/);
    await Promise.all(clients.map((c) => c.close()));
    // Said once per client, not once per eviction.
    for (const c of logs) expect(c.lines.filter(named).length).toBeLessThanOrEqual(1);
  });
});

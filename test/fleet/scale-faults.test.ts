import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startMosquitto } from '../helpers/mosquitto.js';
import { type NatsCluster, startNatsCluster } from '../helpers/nats-cluster.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { createTestVhost } from '../helpers/rabbitmq.js';
import { requirements } from '../helpers/requirements.js';
import { deleteNatsStreams, loadBans, ScaleFleet, v6Addrs } from './scale-harness.js';

const req = requirements('fleet: scale-out faults', [
  'netns',
  'cmd:nft',
  'tcp:5432',
  'tcp:4222',
  'tcp:5672',
  'cmd:rabbitmqctl',
  'cmd:nats-server',
  'cmd:mosquitto',
  'file:dist/cli/main.js',
]);

describe.skipIf(req.skip)('scale-out faults: real hubs and agents, kernels compared with the log', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  const fleetName = () => `s${randomBytes(4).toString('hex')}`;

  /**
   * One hub and three agents on `bus`; `fault` hits the broker while 3,000 bans are loading. Every
   * agent's kernel must end with all of them, and the agents must really have seen the bus go down.
   */
  async function convergesThroughBusFault(
    label: string,
    bus: Record<string, unknown>,
    fault: () => Promise<void>,
  ): Promise<void> {
    const f = new ScaleFleet({ fleet: fleetName(), bus, hubs: 1, agents: 3 });
    cleanup.push(() => f.stop());
    await f.start();
    await loadBans(f, v6Addrs(3_000), {
      chunk: 200,
      fault: async (k) => {
        if (k === 5) await fault();
      },
    });
    const r = await f.expectConverged(label);
    expect(r.bans).toBe(3_000);
    expect(f.agents[0]!.count((l) => l.msg === 'bus' && l.status === 'down')).toBeGreaterThan(0);
  }

  it('two hubs on PostgreSQL over NATS: one SIGKILLed in the middle of a 20,000-ban bulk load, the other carries on', async () => {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const fleet = fleetName();
    cleanup.push(() => deleteNatsStreams(['nats://127.0.0.1:4222'], fleet));
    const f = new ScaleFleet({
      fleet,
      bus: { type: 'nats', url: 'nats://127.0.0.1:4222' },
      storeUrl: db.url,
      hubs: 2,
      agents: 3,
    });
    cleanup.push(() => f.stop());
    await f.start();
    await loadBans(f, v6Addrs(20_000), {
      parallel: 3,
      fault: async (k) => {
        if (k === 14) f.hubs[0]!.proc.child.kill('SIGKILL');
      },
    });
    const r = await f.expectConverged('postgres: one of two hubs SIGKILLed mid-load');
    expect(r.bans).toBe(20_000);
    expect(f.hubs[0]!.proc.child.signalCode).toBe('SIGKILL');
  }, 300_000);

  it('a NATS node of three killed mid-stream, then the whole cluster restarted: agents converge', async () => {
    const c: NatsCluster = await startNatsCluster(3);
    cleanup.push(() => c.stop());
    const f = new ScaleFleet({
      fleet: fleetName(),
      bus: { type: 'nats', url: c.urls, replicas: 3 },
      hubs: 1,
      agents: 3,
    });
    cleanup.push(() => f.stop());
    await f.start();
    // The hub's publishes fail while its connection moves to a live node; it sends them again.
    await loadBans(f, v6Addrs(3_000), {
      chunk: 200,
      fault: async (k) => {
        if (k === 5) await c.nodes[0]!.kill();
      },
    });
    expect((await f.expectConverged('nats: one node of three killed')).bans).toBe(3_000);
    for (const n of c.nodes) await n.kill();
    const restarted = Promise.all(c.nodes.map((n) => n.restart()));
    await loadBans(f, v6Addrs(1_000, 10_000), { chunk: 200 });
    await restarted;
    const r = await f.expectConverged('nats: whole cluster restarted');
    expect(r.bans).toBe(4_000);
    for (const a of f.agents)
      expect(a.count((l) => l.msg === 'bus' && l.status === 'down')).toBeGreaterThan(0);
  }, 180_000);

  it('RabbitMQ dropping every connection of the fleet mid-stream: agents converge', async () => {
    const vh = await createTestVhost();
    cleanup.push(() => vh.remove());
    await convergesThroughBusFault(
      'rabbitmq: every connection dropped',
      { type: 'amqp', url: vh.url() },
      () => vh.closeConnections(),
    );
  }, 300_000);

  it('Mosquitto restarted mid-stream: agents converge', async () => {
    const m = await startMosquitto();
    cleanup.push(() => m.stop());
    await convergesThroughBusFault(
      'mosquitto: restarted',
      { type: 'mqtt', url: `mqtt://127.0.0.1:${m.port}`, username: m.username, password: m.password },
      () => m.restart(),
    );
  }, 300_000);
});

import { describe, expect, it } from 'vitest';
import { type NatsCluster, startNatsCluster } from '../helpers/nats-cluster.js';
import { requirements } from '../helpers/requirements.js';
import { faultCleanup, loadBans, ScaleFleet, v6Addrs } from './scale-harness.js';

const req = requirements('scale-out faults: a NATS JetStream cluster', [
  'netns',
  'cmd:nft',
  'cmd:nats-server',
  'file:dist/cli/main.js',
]);

/* Part of the scale-out fault suite (one file per fault family, so they run side by side):
   real hubs and agents, every agent's kernel compared with the log at the end. */
describe.skipIf(req.skip)('scale-out faults: a NATS JetStream cluster', () => {
  const { cleanup, fleetName } = faultCleanup();

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
});

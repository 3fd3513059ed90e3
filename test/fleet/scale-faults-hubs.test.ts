import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/postgres.js';
import { requirements } from '../helpers/requirements.js';
import { deleteNatsStreams, faultCleanup, loadBans, ScaleFleet, v6Addrs } from './scale-harness.js';

const NATS = 'nats://127.0.0.1:4222';
const req = requirements('scale-out faults: a hub killed mid-load', [
  'netns',
  'cmd:nft',
  'tcp:5432',
  'tcp:4222',
  'file:dist/cli/main.js',
]);

/* Part of the scale-out fault suite (one file per fault family, so they run side by side):
   real hubs and agents, every agent's kernel compared with the log at the end. */
describe.skipIf(req.skip)('scale-out faults: a hub killed or frozen mid-load', () => {
  const { cleanup, fleetName } = faultCleanup();

  /** Two hubs on a database of their own, three agents, NATS between them (not started yet). */
  async function twoHubsOnPostgres(): Promise<ScaleFleet> {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const fleet = fleetName();
    cleanup.push(() => deleteNatsStreams([NATS], fleet));
    return new ScaleFleet({ fleet, bus: { type: 'nats', url: NATS }, storeUrl: db.url, hubs: 2, agents: 3 });
  }

  it('two hubs on PostgreSQL over NATS: one SIGKILLed in the middle of a 20,000-ban bulk load, the other carries on', async () => {
    const f = await twoHubsOnPostgres();
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

  it('two hubs on PostgreSQL over NATS: one frozen (SIGSTOP) mid-load, the agents converge through the other', async () => {
    const f = await twoHubsOnPostgres();
    // A frozen process ignores SIGTERM: thawed before the fleet stops.
    cleanup.push(async () => {
      f.hubs[0]?.proc.child.kill('SIGCONT');
      await f.stop();
    });
    await f.start();
    const addrs = v6Addrs(3_000);
    await loadBans(f, addrs.slice(0, 1_000), { parallel: 1, chunk: 200 });
    // Frozen, not dead: its connections stay open and answer nothing (a stalled VM, a debugger).
    f.hubs[0]!.proc.child.kill('SIGSTOP');
    for (let i = 1_000; i < addrs.length; i += 200) {
      const r = await f.api(1, 'POST', '/v1/decisions/bulk', {
        decisions: addrs.slice(i, i + 200).map((target) => ({ target, duration: '1h', reason: 'load' })),
      });
      expect(r.status).toBe(200);
    }
    const r = await f.expectConverged('postgres: one of two hubs frozen mid-load');
    expect(r.bans).toBe(3_000);
  }, 300_000);
});

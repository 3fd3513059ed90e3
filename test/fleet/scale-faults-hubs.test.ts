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
describe.skipIf(req.skip)('scale-out faults: a hub killed mid-load', () => {
  const { cleanup, fleetName } = faultCleanup();

  it('two hubs on PostgreSQL over NATS: one SIGKILLed in the middle of a 20,000-ban bulk load, the other carries on', async () => {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const fleet = fleetName();
    cleanup.push(() => deleteNatsStreams([NATS], fleet));
    const f = new ScaleFleet({
      fleet,
      bus: { type: 'nats', url: NATS },
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
});

import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresBin, startPrivatePostgres } from '../helpers/private-postgres.js';
import { requirements } from '../helpers/requirements.js';
import { appendLog, sshdFailures } from './harness.js';
import { deleteNatsStreams, faultCleanup, ScaleFleet, v6Addrs } from './scale-harness.js';

const NATS = 'nats://127.0.0.1:4222';
const req = requirements('scale-out faults: PostgreSQL restarted', [
  'netns',
  'cmd:nft',
  'cmd:runuser',
  'tcp:4222',
  `file:${postgresBin() ?? '/usr/lib/postgresql'}/pg_ctl`,
  'file:dist/cli/main.js',
]);

/* Part of the scale-out fault suite (one file per fault family, so they run side by side):
   real hubs and agents, every agent's kernel compared with the log at the end. */
describe.skipIf(req.skip)('scale-out faults: PostgreSQL restarted', () => {
  const { cleanup, fleetName } = faultCleanup();

  it('PostgreSQL restarted while reports arrive from the agents: no report lost, kernels match the log', async () => {
    // A server of the test's own: restarting the shared one would fail the other suites.
    const pgs = await startPrivatePostgres();
    cleanup.push(() => pgs.stop());
    const fleet = fleetName();
    cleanup.push(() => deleteNatsStreams([NATS], fleet));
    const f = new ScaleFleet({
      fleet,
      bus: { type: 'nats', url: NATS },
      storeUrl: pgs.url,
      hubs: 2,
      agents: 2,
      watch: true,
    });
    cleanup.push(() => f.stop());
    await f.start();
    const attackers = v6Addrs(60, 50_000);
    for (let round = 0; round < 6; round++) {
      // Reports go on arriving while the server is down (rounds 2 and 3) and after it is back.
      if (round === 2) {
        await pgs.crash();
        // Down for real: what the hubs' store retries meet until round 4.
        await expect(new pg.Client({ connectionString: pgs.url }).connect()).rejects.toThrow();
      }
      if (round === 4) await pgs.start();
      const batches = [0, 1].map((i) => attackers.slice(round * 10 + i * 5, round * 10 + i * 5 + 5));
      batches.forEach((batch, i) => {
        appendLog(f.logFile(i), batch.map((a) => sshdFailures(a, 6)).join(''));
      });
      // Round by round rather than one burst: the next round's lines go in once each agent has
      // detected this round's attackers and queued their reports.
      await Promise.all(
        batches.flatMap((batch, i) =>
          batch.map((a) =>
            f.agents[i]!.waitFor(
              // The sshd rule bans an IPv6 attacker's /64.
              (l) =>
                l.msg === 'banned locally; reporting to the hub' && l.target === a.replace(/::1$/, '::/64'),
              30_000,
              `agent${i} detects ${a}`,
            ),
          ),
        ),
      );
    }
    const r = await f.expectConverged('postgres: down and restarted while reports arrive');
    // Every attacker of every round is a ban in the log: no report was lost to the outage.
    expect(r.bans).toBe(60);
    // The hubs lived through it (their store retries; nothing to restart by hand).
    for (const h of f.hubs) expect(h.proc.child.exitCode).toBeNull();
  }, 120_000);
});

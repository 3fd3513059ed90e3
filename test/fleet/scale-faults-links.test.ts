import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../bus/tcp-proxy.js';
import { postgresBin, startPrivatePostgres } from '../helpers/private-postgres.js';
import { requirements } from '../helpers/requirements.js';
import { appendLog, sshdFailures, until } from './harness.js';
import { deleteNatsStreams, loadBans, ScaleFleet, v6Addrs } from './scale-harness.js';

const NATS = 'nats://127.0.0.1:4222';
const req = requirements('fleet: scale-out faults (store and links)', [
  'netns',
  'cmd:nft',
  'cmd:runuser',
  'tcp:4222',
  `file:${postgresBin() ?? '/usr/lib/postgresql'}/pg_ctl`,
  'file:dist/cli/main.js',
]);

describe.skipIf(req.skip)('scale-out faults: PostgreSQL restart and an agent cut off', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  const fleetName = () => `s${randomBytes(4).toString('hex')}`;

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
      for (let i = 0; i < 2; i++) {
        const batch = attackers.slice(round * 10 + i * 5, round * 10 + i * 5 + 5);
        appendLog(f.logFile(i), batch.map((a) => sshdFailures(a, 6)).join(''));
      }
      // Paced like a real attack rather than one burst; the reports of a round are on the bus by then.
      await new Promise((r) => setTimeout(r, 500));
    }
    const r = await f.expectConverged('postgres: down and restarted while reports arrive');
    // Every attacker of every round is a ban in the log: no report was lost to the outage.
    expect(r.bans).toBe(60);
    // The hubs lived through it (their store retries; nothing to restart by hand).
    for (const h of f.hubs) expect(h.proc.child.exitCode).toBeNull();
  }, 120_000);

  it('an agent cut off while bans are added and expire, then reconnected: it converges', async () => {
    const relays: TcpProxy[] = [];
    const fleet = fleetName();
    cleanup.push(() => deleteNatsStreams([NATS], fleet));
    const f = new ScaleFleet({
      fleet,
      bus: { type: 'nats', url: NATS },
      hubs: 1,
      agents: 2,
      // Agent 1 reaches the broker and the hub only through relays: cutting them is its link down.
      agentRoute: async (i, hubUrls) => {
        if (i !== 1) return {};
        const bus = await startTcpProxy(4222);
        const hub = await startTcpProxy(Number(new URL(hubUrls[0]!).port));
        relays.push(bus, hub);
        cleanup.push(
          () => bus.close(),
          () => hub.close(),
        );
        return {
          bus: { type: 'nats', url: `nats://127.0.0.1:${bus.port}` },
          hub: `http://127.0.0.1:${hub.port}`,
        };
      },
    });
    cleanup.push(() => f.stop());
    await f.start();
    await loadBans(f, v6Addrs(500), { duration: '1h' });
    await f.expectConverged('partition: before the cut');

    for (const r of relays) r.cut();
    await f.agents[1]!.waitFor((l) => l.msg === 'bus' && l.status === 'down', 30_000, 'agent1 bus down');
    // Log time compressed: the cut stands for 10 minutes, so short bans are added and expire
    // entirely inside it (seconds here, minutes in the field), next to long ones that stay.
    const short = v6Addrs(300, 20_000);
    await loadBans(f, short, { duration: '6s' });
    await loadBans(f, v6Addrs(300, 30_000), { duration: '1h' });
    await until(
      async () => {
        const k = await f.kernelSet(0);
        return short.every((a) => !k.has(a));
      },
      30_000,
      'the short bans expired at the connected agent',
    );
    for (const r of relays) r.restore();
    const r = await f.expectConverged('partition: agent cut off, then reconnected');
    expect(r.bans).toBe(800);
    const cutOff = await f.kernelSet(1);
    expect(short.filter((a) => cutOff.has(a))).toEqual([]);
  }, 120_000);
});

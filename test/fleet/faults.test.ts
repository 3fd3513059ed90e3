import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { LIBFAKETIME } from '../helpers/fake-clock.js';
import { requirements } from '../helpers/requirements.js';
import { MAIN } from './harness.js';
import { ScaleFleet, v6Addrs } from './scale-harness.js';

const req = requirements('fleet: power cuts and clock skew', [
  'netns',
  'cmd:nft',
  `file:${LIBFAKETIME}`,
  'file:dist/cli/main.js',
]);

const EMBEDDED = { type: 'embedded' };

/** The operator CLI against the fleet's first hub. */
async function cliIn(f: ScaleFleet, args: string[]): Promise<string> {
  const env = { ...process.env, RAMPART_HUB: f.hubs[0]!.url, RAMPART_TOKEN: f.adminToken };
  return (await promisify(execFile)(process.execPath, [MAIN, ...args], { env })).stdout;
}

/**
 * Faults on a fleet on its defaults (embedded broker, SQLite): real hub and agent processes,
 * nftables in the agents' namespaces, every test ending with the kernels compared with the log.
 */
describe.skipIf(req.skip)('fleet faults: SIGKILL mid-commit, power cut, clock skew', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  });
  const fleet = () => `f${randomBytes(4).toString('hex')}`;
  const bulk = (f: ScaleFleet, addrs: string[]) =>
    f.api(0, 'POST', '/v1/decisions/bulk', {
      decisions: addrs.map((target) => ({ target, duration: '1h', reason: 'fault test' })),
    });

  it('an agent SIGKILLed in the middle of a 30,000-element kernel commit converges after restart', async () => {
    const f = new ScaleFleet({ fleet: fleet(), bus: EMBEDDED, hubs: 1, agents: 2 });
    cleanup.push(() => f.stop());
    await f.start();
    const addrs = v6Addrs(30_000);
    for (let i = 0; i < 20_000; i += 10_000)
      expect((await bulk(f, addrs.slice(i, i + 10_000))).status).toBe(200);
    // The last 10,000 go out while agent 0 is still writing the first ones: kill it right then.
    const last = bulk(f, addrs.slice(20_000));
    f.agents[0]!.child.kill('SIGKILL');
    expect((await last).status).toBe(200);
    await f.agents[0]!.stop();
    const atKill = (await f.kernelSet(0)).size;
    const t0 = Date.now();
    await f.startAgent(0);
    const c = await f.expectConverged('agent SIGKILLed mid-load');
    expect(c.bans).toBe(30_000);
    console.log(
      `agent SIGKILL mid-commit: ${atKill} of 30,000 in its kernel when killed; ${c.bans} bans, converged ${Date.now() - t0} ms after restart`,
    );
  }, 240_000);

  it('a power cut of hub and agent together mid bulk load loses no acknowledged ban; seq stays gap-free', async () => {
    const f = new ScaleFleet({ fleet: fleet(), bus: EMBEDDED, hubs: 1, agents: 1 });
    cleanup.push(() => f.stop());
    await f.start();
    const addrs = v6Addrs(20_000, 100_000);
    const acked: string[] = [];
    const chunk = 1_000;
    let inFlight = 0;
    for (let i = 0; i < addrs.length; i += chunk) {
      const part = addrs.slice(i, i + chunk);
      if (i / chunk === 12) {
        // Both die at once, while chunk 12 is on its way: what was acknowledged must survive.
        const pending = bulk(f, part).catch(() => undefined);
        inFlight = part.length;
        f.hubs[0]!.proc.child.kill('SIGKILL');
        f.agents[0]!.child.kill('SIGKILL');
        const late = await pending;
        if (late?.status === 200) acked.push(...part);
        break;
      }
      const r = await bulk(f, part);
      expect(r.status).toBe(200);
      acked.push(...part);
    }
    await f.hubs[0]!.proc.stop();
    await f.agents[0]!.stop();
    const t0 = Date.now();
    await f.startHub(0);
    await f.startAgent(0);
    const c = await f.expectConverged('power cut of hub and agent');
    const store = await f.openStore();
    try {
      const active = new Set((await store.active(Date.now())).map((d) => d.target));
      const lost = acked.filter((a) => !active.has(a));
      expect(lost).toEqual([]);
      expect(c.bans).toBeGreaterThanOrEqual(acked.length);
      expect(c.bans).toBeLessThanOrEqual(acked.length + inFlight);
    } finally {
      await store.close();
    }
    console.log(
      `power cut mid-load: ${acked.length} acknowledged, ${c.bans} in the log and the kernel, seq 1..${c.head} gap-free, converged ${Date.now() - t0} ms after restart`,
    );
  }, 240_000);

  it('agents 5 minutes ahead and behind: their messages are refused and counted, status names them', async () => {
    const f = new ScaleFleet({ fleet: fleet(), bus: EMBEDDED, hubs: 1, agents: 3 });
    cleanup.push(() => f.stop());
    await f.start();
    // Agent 1 runs 5 minutes ahead, agent 2 five minutes behind (libfaketime shifts only the
    // wall clock: timers, on the monotonic clock, run as usual).
    for (const [i, shift] of [
      [1, '+300s'],
      [2, '-300s'],
    ] as const) {
      await f.agents[i]!.stop();
      // Preloaded into the agent itself (not the `faketime` wrapper, which would not pass
      // SIGTERM on): the process stopped at the end is the agent.
      await f.startAgent(i, {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME: shift,
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
    }
    const hub = f.hubs[0]!.proc;
    for (const n of ['agent1', 'agent2'])
      await hub.waitFor(
        (l) => l.node === n && l.msg === "refused a node's message: its clock is outside the time window",
        30_000,
        `${n} refused for its clock`,
      );
    const status = JSON.parse(await cliIn(f, ['status', '--json'])) as {
      nodes: Array<{ name: string; clockSkewMs?: number; clockRefused?: boolean }>;
      dropped: Record<string, number>;
    };
    const by = Object.fromEntries(status.nodes.map((n) => [n.name, n]));
    expect(by.agent0!.clockRefused).toBe(false);
    expect(Math.abs(by.agent0!.clockSkewMs!)).toBeLessThan(5_000);
    expect(by.agent1!.clockRefused).toBe(true);
    expect(by.agent1!.clockSkewMs!).toBeGreaterThan(290_000);
    expect(by.agent2!.clockRefused).toBe(true);
    expect(by.agent2!.clockSkewMs!).toBeLessThan(-290_000);
    expect(status.dropped.future).toBeGreaterThan(0);
    expect(status.dropped.expired).toBeGreaterThan(0);
    const text = await cliIn(f, ['status']);
    expect(text).toMatch(/agent1: clock off by \+30\d\.\ds, outside the time window/);
    expect(text).toMatch(/agent2: clock off by -30\d\.\ds, outside the time window/);
    expect(text).not.toMatch(/agent0: clock off/);
    // The skewed agents refuse the hub's live decisions too, counted on their metric.
    const r = await f.api(0, 'POST', '/v1/decisions', { target: '2001:db8:ffff::7', duration: '1h' });
    expect(r.status).toBe(201);
    for (const i of [1, 2])
      await f.agents[i]!.waitFor(
        (l) => l.reason === (i === 1 ? 'expired' : 'future'),
        15_000,
        `agent${i} drops the decision by its clock`,
      );
    console.log(
      `clock skew: agent1 ${by.agent1!.clockSkewMs} ms, agent2 ${by.agent2!.clockSkewMs} ms refused; hub dropped future ${status.dropped.future}, expired ${status.dropped.expired}`,
    );
  }, 180_000);
});

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import {
  appendLog,
  cli,
  createLog,
  inKernelSet,
  type Proc,
  rampart,
  removeDir,
  sshdFailures,
  tempDir,
  until,
} from './harness.js';

const PORT = 2222;
const AGENTS = 3;

/**
 * Fleet-wide counting end to end: a hub, three agents, a slow attacker and a clumsy friend, each
 * in its own network namespace, every rampart process the real CLI. The attacker fails twice on
 * each server (below sshd's local maxretry of 5, so no agent bans alone); the hub adds the three
 * servers' hits up (6 ≥ the fleet maxretry of 5 set here, from 3 ≥ 2 nodes) and bans it
 * everywhere. The friend mistypes once on each server: 3 hits, below the fleet threshold.
 */
const req = requirements('fleet-wide counting', ['netns', 'cmd:nft']);

describe.skipIf(req.skip)('fleet-wide counting of a slow attack spread over several agents', () => {
  let lan: Lan;
  let hubHost: Host;
  let agents: Host[];
  let attacker: Host;
  let friend: Host;
  let hubDir: string;
  const dirs: string[] = [];
  const procs: Proc[] = [];
  const logs: string[] = [];
  const listeners: Array<{ stop(): void }> = [];
  let hub: Proc;

  beforeAll(async () => {
    lan = await createLan(AGENTS + 3, 'fcn');
    [hubHost, attacker, friend] = [lan.hosts[0]!, lan.hosts[AGENTS + 1]!, lan.hosts[AGENTS + 2]!];
    agents = lan.hosts.slice(1, AGENTS + 1);
    hubDir = tempDir('fleetcount-hub');
    dirs.push(hubDir);
    const hubConfig = join(hubDir, 'rampart.yaml');
    writeFileSync(
      hubConfig,
      'hub:\n  policy:\n    fleet:\n      perNode: 2\n      minNodes: 2\n      rules:\n        sshd: { maxretry: 5, findtime: 1h }\n',
    );
    hub = rampart(hubHost, ['hub', '--data', hubDir, '--listen', hubHost.v4, '--config', hubConfig]);
    procs.push(hub);
    await hub.waitFor((l) => l.msg === 'hub started', 20_000, 'hub started');
    for (let i = 0; i < AGENTS; i++) {
      const dir = tempDir(`fleetcount-agent${i + 1}`);
      dirs.push(dir);
      logs.push(join(dir, 'auth.log'));
      createLog(logs[i]!);
      const added = JSON.parse(
        await cli(hubHost, ['nodes', 'add', `agent${i + 1}`, '--data', hubDir, '--json']),
      ) as { token: string };
      await cli(agents[i]!, ['join', added.token, '--data', dir]);
      // The shipped default, written out: below-threshold hits go to the hub every 2 s.
      writeFileSync(join(dir, 'rampart.yaml'), 'agent:\n  fleetCounting: true\n  fleetInterval: 2s\n');
      listeners.push(await tcpListener(agents[i]!, PORT));
    }
    await Promise.all(
      agents.map(async (host, i) => {
        const p = rampart(host, [
          'agent',
          '--data',
          dirs[i + 1]!,
          '--config',
          join(dirs[i + 1]!, 'rampart.yaml'),
          '--watch',
          logs[i]!,
          '--firewall',
          'nftables',
        ]);
        procs.push(p);
        await p.waitFor((l) => l.msg === 'agent running', 20_000, `agent${i + 1} running`);
        await p.waitFor((l) => l.msg === 'bus' && l.status === 'up', 20_000, `agent${i + 1} bus up`);
      }),
    );
  }, 120_000);

  afterAll(async () => {
    for (const p of procs) await p.stop();
    for (const l of listeners) l.stop();
    await lan?.destroy();
    for (const d of dirs) removeDir(d);
  });

  it('two failures on each of three servers ban the attacker on all of them; one on each does not ban the friend', async () => {
    for (const a of agents) expect(await canConnect(attacker, a.v4, PORT)).toBe(true);
    // The friend's mistakes come first in each log: by the time the attacker's hits (sent in the
    // same or a later batch) have been counted, so have the friend's.
    for (let i = 0; i < AGENTS; i++) {
      appendLog(
        logs[i]!,
        sshdFailures(friend.v4, 1, `agent${i + 1}`) + sshdFailures(attacker.v4, 2, `agent${i + 1}`),
      );
    }
    await until(
      async () => (await Promise.all(agents.map((h) => inKernelSet(h, attacker.v4)))).every(Boolean),
      20_000,
      `${attacker.v4} in every agent's nftables set`,
    );
    for (const a of agents) expect(await canConnect(attacker, a.v4, PORT, 800)).toBe(false);

    // No agent banned on its own: the ban is the hub's, made from the fleet's counts.
    const list = JSON.parse(await cli(hubHost, ['list', '--json', '--data', hubDir])) as {
      items: Array<{ target: string; origin: string; rule: string; reason: string }>;
    };
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({ target: attacker.v4, origin: 'fleet', rule: 'sshd' });
    expect(list.items[0]!.reason).toBe('sshd: 6 hits from 3 nodes within 1h (fleet-wide)');
    expect(
      hub.lines.find((l) => l.msg === 'fleet-wide threshold crossed' && l.target === friend.v4),
    ).toBeUndefined();

    for (const a of agents) expect(await inKernelSet(a, friend.v4)).toBe(false);
    for (const a of agents) expect(await canConnect(friend, a.v4, PORT)).toBe(true);

    // The hub's view: the friend's three hits counted, and one fleet ban made.
    const token = readFileSync(join(hubDir, 'hub', 'admin.token'), 'utf8').trim();
    const metrics = await hubHost.exec(process.execPath, [
      '-e',
      `fetch(process.argv[1], { headers: { authorization: 'Bearer ' + process.argv[2] } }).then((r) => r.text()).then((t) => process.stdout.write(t))`,
      `http://${hubHost.v4}:7780/metrics`,
      token,
    ]);
    expect(metrics).toMatch(/^rampart_hub_fleet_bans_total\{result="ban"\} 1$/m);
    expect(metrics).toMatch(/^rampart_hub_fleet_table_entries 1$/m);
    expect(metrics).toMatch(/^rampart_hub_fleet_evictions_total 0$/m);
  }, 60_000);
});

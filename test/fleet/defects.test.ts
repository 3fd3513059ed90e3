import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentState } from '../../src/agent/state.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { DecisionInput } from '../../src/store/types.js';
import { createLan, type Host, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import {
  appendLog,
  cli,
  cliStatus,
  createLog,
  inKernelSet,
  type Proc,
  rampart,
  removeDir,
  sshdFailures,
  startNftAgent,
  tempDir,
  until,
} from './harness.js';

const req = requirements('fleet defects (issue 13)', ['netns', 'cmd:nft']);

/**
 * The attacks of issue 13 on a real hub and agent in namespaces, enforcing with real nftables.
 * Poisoned decisions are planted straight into the hub's store (and the agent's state): that is
 * what an older hub, or one compromised before this fix, would have left behind.
 */
describe.skipIf(req.skip)('fleet defects: poisoned decisions never stall or cut off an agent', () => {
  let lan: Lan;
  let hubHost: Host;
  let agentHost: Host;
  let hubDir: string;
  let agentDir: string;
  let logFile: string;
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  const procs: Proc[] = [];

  const startHub = async () => {
    hub = rampart(hubHost, ['hub', '--data', hubDir, '--listen', hubHost.v4]);
    procs.push(hub);
    await hub.waitFor((l) => l.msg === 'hub started', 20_000, 'hub started');
  };
  const startAgent = async () => {
    agent = await startNftAgent(agentHost, agentDir, ['--watch', logFile]);
    procs.push(agent);
  };
  /** Appends decisions to the stopped hub's log as if it had accepted them. */
  const plant = async (inputs: Array<Partial<DecisionInput> & { target: string }>) => {
    await hub!.stop();
    const store = new SqliteStore(join(hubDir, 'hub', 'hub.db'));
    const now = Date.now();
    await store.append(
      inputs.map((i) => ({
        action: 'ban',
        family: i.target.includes(':') ? 6 : 4,
        duration: 3600,
        expiresAt: now + 3_600_000,
        reason: 'planted',
        rule: 'manual',
        origin: 'operator',
        createdAt: now,
        set: 'blocklist',
        ...i,
      })),
    );
    await store.close();
    await startHub();
  };
  const ban = (target: string, ...more: string[]) =>
    cliStatus(hubHost, ['ban', target, '--for', '1h', '--data', hubDir, ...more]);

  beforeAll(async () => {
    lan = await createLan(2, 'dfx');
    [hubHost, agentHost] = [lan.hosts[0]!, lan.hosts[1]!];
    hubDir = tempDir('dfx-hub');
    agentDir = tempDir('dfx-agent');
    logFile = join(agentDir, 'auth.log');
    createLog(logFile);
    writeFileSync(
      join(agentDir, 'rampart.yaml'),
      'agent:\n  reconcileInterval: 2s\n  heartbeatInterval: 1s\n',
    );
    await startHub();
    const added = JSON.parse(await cli(hubHost, ['nodes', 'add', 'web1', '--data', hubDir, '--json'])) as {
      token: string;
    };
    await cli(agentHost, ['join', added.token, '--data', agentDir]);
    await startAgent();
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) await p.stop();
    await lan?.destroy();
    removeDir(hubDir);
    removeDir(agentDir);
  });

  it('a stored ban with set 1x is dropped and logged by the agent, and later bans still reach its kernel', async () => {
    await plant([{ target: '192.0.2.50', set: '1x' }]);
    expect((await ban('192.0.2.51')).code).toBe(0);
    await until(() => inKernelSet(agentHost, '192.0.2.51'), 45_000, '192.0.2.51 in the kernel set');
    await agent!.waitFor((l) => String(l.msg).startsWith('decision dropped: its set name'), 5000);
    expect(agent!.count((l) => String(l.msg).includes('firewall commit failed'))).toBe(0);
  });

  it('a poisoned ban in the agent state is dropped at restart instead of retried forever', async () => {
    await agent!.stop();
    const state = AgentState.open(join(agentDir, 'agent'));
    state.addLocal({ target: '192.0.2.52', set: '1x', expiresAt: Date.now() + 3_600_000, origin: 'web1' });
    state.close();
    await startAgent();
    expect((await ban('192.0.2.53')).code).toBe(0);
    await until(() => inKernelSet(agentHost, '192.0.2.53'), 15_000, '192.0.2.53 in the kernel set');
    expect(agent!.count((l) => String(l.msg).includes('firewall commit failed'))).toBe(0);
  });

  it('the hub refuses bans of itself (::ffff: and ranges too), of its node without --force, and allow 0.0.0.0/0 without --force', async () => {
    for (const t of [hubHost.v4, `::ffff:${hubHost.v4}`, '198.51.100.0/24']) {
      const r = await ban(t, '--force');
      expect(r.code, `${t}: ${r.out}`).toBe(2);
      expect(r.out).toMatch(/covers the hub or its broker/);
    }
    // Another address of the hub's machine (it listens on v4 only): refused unless forced.
    const own = await ban(hubHost.v6);
    expect(own.code, own.out).toBe(2);
    expect(own.out).toMatch(/address of the hub's machine/);
    // The agent called the hub over HTTP from its address: that address is an enrolled node's.
    const node = await ban(agentHost.v4);
    expect(node.code, node.out).toBe(2);
    expect(node.out).toMatch(/enrolled node web1/);
    expect((await ban(agentHost.v4, '--force')).code).toBe(0);
    expect((await cliStatus(hubHost, ['unban', agentHost.v4, '--data', hubDir])).code).toBe(0);
    const all = await cliStatus(hubHost, ['allow', 'add', '0.0.0.0/0', '--data', hubDir]);
    expect(all.code).toBe(2);
    expect(all.out).toMatch(/--force/);
  });

  it('a signed ban covering the hub is never enforced by the agent, which stays connected', async () => {
    await plant([{ target: '198.51.100.0/24' }, { target: hubHost.v4 }]);
    expect((await ban('192.0.2.54')).code).toBe(0);
    // Before the fix the /24 went into the kernel, the agent lost the hub and 192.0.2.54 never came.
    await until(() => inKernelSet(agentHost, '192.0.2.54'), 45_000, '192.0.2.54 in the kernel set');
    expect(await inKernelSet(agentHost, hubHost.v4)).toBe(false);
    const nets = await agentHost.exec('nft', ['list', 'set', 'inet', 'rampart', 'blocklist_v4_net']);
    expect(nets).not.toContain('198.51.100.0/24');
    expect(agent!.count((l) => String(l.msg).startsWith('ban refused: it covers'))).toBeGreaterThanOrEqual(2);
  });

  /** Drops (or rejects) traffic into the hub's namespace; returns the undo. */
  const block = async (rule: string) => {
    await hubHost.exec('nft', ['-f', '-'], {
      input: `table inet dfxblock {\n chain in {\n type filter hook input priority -10;\n ${rule.split(';').join('\n')}\n }\n}\n`,
    });
    return () => hubHost.exec('nft', ['delete', 'table', 'inet', 'dfxblock']);
  };

  it('after a hub restart with its bus not back yet, a new ban still reaches the agent over HTTP', async () => {
    const info = JSON.parse(readFileSync(join(hubDir, 'hub', 'hub.json'), 'utf8')) as {
      bus: { url: string };
    };
    const brokerPort = new URL(info.bus.url).port;
    await hub!.stop();
    const unblock = await block(`tcp dport ${brokerPort} reject with tcp reset`);
    try {
      await startHub();
      expect((await ban('192.0.2.55')).code).toBe(0);
      // Before the fix nothing polled the log while the bus was down: the ban waited for the bus.
      await until(() => inKernelSet(agentHost, '192.0.2.55'), 15_000, '192.0.2.55 in the kernel set');
    } finally {
      await unblock();
    }
  });

  it('with its hub unreachable and a report in flight, the agent stops on SIGTERM on its own', async () => {
    const unblock = await block('ip saddr 198.51.100.0/24 drop; ip6 saddr 2001:db8::/64 drop');
    try {
      appendLog(logFile, sshdFailures('203.0.113.9', 5, 'web1'));
      await agent!.waitFor((l) => l.msg === 'banned locally; reporting to the hub', 10_000);
      // Proc.stop sends SIGKILL after 5 s: a clean exit (code 0) means it stopped by itself.
      expect(await agent!.stop(), agent!.tail(30)).toBe(0);
    } finally {
      await unblock();
    }
  });
});

import type { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seal } from '../../src/trust/envelope.js';
import { generateKeyPair, loadKeyPair } from '../../src/trust/keys.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
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
  tempDir,
  until,
} from './harness.js';

const PORT = 2222;

/**
 * The fleet end to end: a hub, three agents, an attacker and a friendly host, each in its own
 * network namespace on one LAN, every rampart process the real CLI. `bus` picks the embedded
 * broker or a Mosquitto started inside the hub's namespace (127.0.0.1:1883 on the host is not
 * reachable from the namespaces).
 */
export function fleetSuite(bus: 'embedded' | 'mosquitto'): void {
  const needs = [
    'netns',
    'cmd:nft',
    'cmd:mosquitto_pub',
    ...(bus === 'mosquitto' ? ['cmd:mosquitto'] : []),
  ] as const;
  const req = requirements(`fleet (${bus})`, [...needs] as Parameters<typeof requirements>[1]);

  describe.skipIf(req.skip)(
    `fleet over ${bus === 'embedded' ? 'the embedded broker' : 'an external Mosquitto'}`,
    () => {
      let lan: Lan;
      let hubHost: Host;
      let agents: Host[];
      let attacker: Host;
      let friend: Host;
      const dirs: string[] = [];
      let hubDir: string;
      let hub: Proc;
      const procs: Proc[] = [];
      const agentProcs: Proc[] = [];
      const logs: string[] = [];
      const tokens: string[] = [];
      const listeners: Array<{ stop(): void }> = [];
      let mosquitto: ReturnType<typeof spawn> | undefined;
      let brokerPort = 7781;
      let configFile: string | undefined;

      const startHub = async () => {
        const args = ['hub', '--data', hubDir, '--listen', hubHost.v4];
        if (configFile) args.push('--config', configFile);
        hub = rampart(hubHost, args);
        procs.push(hub);
        await hub.waitFor((l) => l.msg === 'hub started', 20_000, 'hub started');
      };
      const startAgent = async (i: number) => {
        const p = rampart(agents[i]!, [
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
        agentProcs[i] = p;
        await p.waitFor((l) => l.msg === 'agent running', 20_000, `agent${i + 1} running`);
        // Connected to the bus and caught up: from here on, decisions arrive live.
        await p.waitFor((l) => l.msg === 'bus' && l.status === 'up', 20_000, `agent${i + 1} bus up`);
        return p;
      };
      const blockedEverywhere = (addr: string, hosts: Host[]) =>
        until(
          async () => (await Promise.all(hosts.map((h) => inKernelSet(h, addr)))).every(Boolean),
          15_000,
          `${addr} banned`,
        );

      beforeAll(async () => {
        lan = await createLan(6, bus === 'embedded' ? 'fle' : 'flm');
        [hubHost, attacker, friend] = [lan.hosts[0]!, lan.hosts[4]!, lan.hosts[5]!];
        agents = lan.hosts.slice(1, 4);
        hubDir = tempDir('hub');
        dirs.push(hubDir);
        if (bus === 'mosquitto') {
          brokerPort = 1883;
          const conf = join(hubDir, 'mosquitto.conf');
          writeFileSync(
            conf,
            `listener ${brokerPort} ${hubHost.v4}\nallow_anonymous true\npersistence false\nlog_dest stderr\nuser root\n`,
          );
          mosquitto = hubHost.spawn('mosquitto', ['-c', conf]);
          await until(
            async () => (await hubHost.exec('ss', ['-ltn'])).includes(`${hubHost.v4}:${brokerPort}`),
            10_000,
            'mosquitto',
          );
          configFile = join(hubDir, 'rampart.yaml');
          writeFileSync(configFile, `bus:\n  type: mqtt\n  url: mqtt://${hubHost.v4}:${brokerPort}\n`);
        }
        await startHub();
        for (let i = 0; i < 3; i++) {
          const dir = tempDir(`agent${i + 1}`);
          dirs.push(dir);
          logs.push(join(dir, 'auth.log'));
          createLog(logs[i]!);
          // Reconcile often, so it runs (and races live decisions) throughout the suite.
          writeFileSync(
            join(dir, 'rampart.yaml'),
            'agent:\n  reconcileInterval: 2s\n  heartbeatInterval: 1s\n',
          );
          const added = JSON.parse(
            await cli(hubHost, ['nodes', 'add', `agent${i + 1}`, '--data', hubDir, '--json']),
          ) as {
            token: string;
          };
          await cli(agents[i]!, ['join', added.token, '--data', dir]);
          tokens.push(readFileSync(join(dir, 'agent', 'node.token'), 'utf8').trim());
          listeners.push(await tcpListener(agents[i]!, PORT));
        }
        await Promise.all([0, 1, 2].map(startAgent));
      }, 120_000);

      afterAll(async () => {
        for (const p of procs) await p.stop();
        mosquitto?.kill('SIGKILL');
        for (const l of listeners) l.stop();
        await lan?.destroy();
        for (const d of dirs) removeDir(d);
      });

      it("failed sshd logins in agent 1's log make the attacker's TCP connections to agents 2 and 3 fail", async () => {
        for (const a of agents) expect(await canConnect(attacker, a.v4, PORT)).toBe(true);
        appendLog(logs[0]!, sshdFailures(attacker.v4, 5, 'agent1'));
        await blockedEverywhere(attacker.v4, agents);
        for (const a of agents) expect(await canConnect(attacker, a.v4, PORT, 800)).toBe(false);
        // The friend is not affected.
        expect(await canConnect(friend, agents[1]!.v4, PORT)).toBe(true);
        const list = JSON.parse(await cli(hubHost, ['list', '--json', '--data', hubDir])) as {
          items: Array<{ target: string; origin: string }>;
        };
        expect(list.items.find((d) => d.target === attacker.v4)?.origin).toBe('agent1');
      });

      it('rampart unban restores them', async () => {
        await cli(hubHost, ['unban', attacker.v4, '--data', hubDir]);
        await until(
          async () =>
            !(await inKernelSet(agents[1]!, attacker.v4)) && !(await inKernelSet(agents[2]!, attacker.v4)),
          15_000,
          'unban',
        );
        expect(await canConnect(attacker, agents[1]!.v4, PORT)).toBe(true);
        expect(await canConnect(attacker, agents[2]!.v4, PORT)).toBe(true);
        await until(async () => !(await inKernelSet(agents[0]!, attacker.v4)), 15_000, 'unban on agent1');
      });

      it('an agent stopped during a ban catches up when it starts again', async () => {
        expect(await agentProcs[2]!.stop()).toBe(0);
        await cli(hubHost, ['ban', attacker.v6, '--for', '1h', '--data', hubDir]);
        await blockedEverywhere(attacker.v6, agents.slice(0, 2));
        expect(await canConnect(attacker, agents[2]!.v6, PORT)).toBe(true);
        await startAgent(2);
        await blockedEverywhere(attacker.v6, agents);
        expect(await canConnect(attacker, agents[2]!.v6, PORT, 800)).toBe(false);
      });

      it('the hub restarted loses nothing and the agents follow it', async () => {
        const status = async () =>
          JSON.parse(await cli(hubHost, ['status', '--json', '--data', hubDir])) as { head: number };
        const before = await status();
        expect(await hub.stop()).toBe(0);
        await startHub();
        expect((await status()).head).toBe(before.head);
        const after = JSON.parse(await cli(hubHost, ['list', '--json', '--data', hubDir])) as {
          items: Array<{ target: string }>;
        };
        expect(after.items.map((d) => d.target)).toContain(attacker.v6);
        const banned = JSON.parse(
          await cli(hubHost, ['ban', '192.0.2.77', '--for', '1h', '--json', '--data', hubDir]),
        ) as {
          seq: number;
        };
        expect(banned.seq).toBe(before.head + 1);
        await blockedEverywhere('192.0.2.77', agents);
      });

      it('an operator flushing the kernel set is repaired by reconcile', async () => {
        expect(await inKernelSet(agents[1]!, '192.0.2.77')).toBe(true);
        // The agent reconciles every second here, so it may repair the set before we can look at it
        // empty; the proof that reconcile did it is a new 'repaired' line plus the element back.
        const repairs = () =>
          agentProcs[1]!.lines.filter((l) => /reconcile repaired/.test(String(l.msg))).length;
        const repairsBefore = repairs();
        await agents[1]!.exec('nft', ['flush', 'set', 'inet', 'rampart', 'blocklist_v4']);
        await until(
          async () => repairs() > repairsBefore && (await inKernelSet(agents[1]!, '192.0.2.77')),
          10_000,
          'reconcile repaired the set',
        ).catch((err) => {
          throw new Error(
            `${(err as Error).message}\n${agentProcs[1]!.lines.filter((l) => /reconcile/.test(String(l.msg))).length} reconcile lines\n${agentProcs[1]!.tail(20)}`,
          );
        });
      });

      it('heartbeats show every agent caught up in rampart status', async () => {
        await until(
          async () => {
            const st = JSON.parse(await cli(hubHost, ['status', '--json', '--data', hubDir])) as {
              head: number;
              nodes: Array<{ name: string; lastSeq: number; lag: number }>;
            };
            const agentsSeen = st.nodes.filter((n) => /^agent\d$/.test(n.name));
            return agentsSeen.length === 3 && agentsSeen.every((n) => n.lastSeq === st.head && n.lag === 0);
          },
          10_000,
          'status shows three agents at head',
        );
      });

      it('a forged, unsigned, replayed or out-of-window decision changes nothing and is counted', async () => {
        const hubKey = loadKeyPair(join(hubDir, 'hub'), 'hub.key');
        const head = (
          JSON.parse(await cli(hubHost, ['status', '--json', '--data', hubDir])) as { head: number }
        ).head;
        const body = (target: string, seq: number) => ({
          id: `forged-${seq}`,
          seq,
          action: 'ban',
          target,
          family: 4,
          duration: 3600,
          expiresAt: Date.now() + 3_600_000,
          reason: 'forged',
          rule: 'x',
          origin: 'hub',
          createdAt: Date.now(),
          set: 'blocklist',
        });
        const unsigned = JSON.parse(
          seal('decision', body(friend.v4, head + 1), 'hub', generateKeyPair().privateKey).toString(),
        );
        unsigned.sig = '';
        const messages = {
          'bad-signature': seal(
            'decision',
            body(friend.v4, head + 1),
            'hub',
            generateKeyPair().privateKey,
          ).toString(),
          unsigned: JSON.stringify(unsigned),
          expired: seal('decision', body(friend.v4, head + 1), 'hub', hubKey.privateKey, {
            ts: Date.now() - 600_000,
          }).toString(),
        };
        // A genuine decision, captured off the bus, then played again.
        const topic = 'rampart/default/decisions';
        const creds = bus === 'embedded' ? ['-u', 'agent1', '-P', tokens[0]!] : [];
        const sub = attacker.spawn('mosquitto_sub', [
          '-h',
          hubHost.v4,
          '-p',
          String(brokerPort),
          '-t',
          topic,
          '-C',
          '1',
          '-q',
          '1',
          '-i',
          `cap-${Date.now()}`,
          ...creds,
        ]);
        let captured = '';
        sub.stdout!.on('data', (d: Buffer) => {
          captured += d.toString();
        });
        await new Promise((r) => setTimeout(r, 500));
        await cli(hubHost, ['ban', '192.0.2.78', '--for', '1h', '--data', hubDir]);
        await until(() => captured.includes('\n'), 10_000, 'captured decision');
        await blockedEverywhere('192.0.2.78', agents);
        const publish = (m: string) =>
          attacker
            .exec('mosquitto_pub', [
              '-h',
              hubHost.v4,
              '-p',
              String(brokerPort),
              '-t',
              topic,
              '-q',
              '1',
              '-m',
              m,
              ...creds,
            ])
            .then(
              () => true,
              () => false,
            );
        const accepted: Record<string, boolean> = {};
        for (const [reason, m] of Object.entries({ ...messages, replay: captured.trim() }))
          accepted[reason] = await publish(m);
        await new Promise((r) => setTimeout(r, 1500));
        for (const a of agents) expect(await inKernelSet(a, friend.v4)).toBe(false);
        expect(await canConnect(friend, agents[1]!.v4, PORT)).toBe(true);
        const dropped = (p: Proc, reason: string) =>
          p.count((l) => l.msg === 'decision message dropped' && l.reason === reason);
        if (bus === 'mosquitto') {
          // No broker ACL: every message reaches every agent, which refuses and counts it by reason.
          for (const p of agentProcs) {
            for (const reason of ['bad-signature', 'unsigned', 'expired', 'replay'])
              expect(dropped(p, reason), reason).toBe(1);
          }
        } else {
          // The embedded broker lets only the hub publish decisions: a node's credentials are refused.
          expect(accepted['bad-signature'] && accepted.unsigned && accepted.expired).toBe(false);
          for (const p of agentProcs) expect(dropped(p, 'bad-signature') + dropped(p, 'unsigned')).toBe(0);
        }
        const list = JSON.parse(await cli(hubHost, ['list', '--json', '--data', hubDir])) as {
          items: Array<{ target: string }>;
        };
        expect(list.items.length).toBeGreaterThan(0);
        expect(list.items.map((d) => d.target)).not.toContain(friend.v4);
      });

      it('an allowlisted address is never banned, neither by a report nor by hand', async () => {
        await cli(hubHost, ['allow', 'add', `${friend.v4}/32`, '--data', hubDir]);
        appendLog(logs[0]!, sshdFailures(friend.v4, 6, 'agent1'));
        await agentProcs[0]!.waitFor(
          (l) => l.msg === 'hub refused the ban: lifted locally',
          15_000,
          'lifted',
        );
        await until(async () => !(await inKernelSet(agents[0]!, friend.v4)), 5000, 'local ban lifted');
        for (const a of agents.slice(1)) expect(await inKernelSet(a, friend.v4)).toBe(false);
        expect(await canConnect(friend, agents[0]!.v4, PORT)).toBe(true);
        const byHand = await cliStatus(hubHost, ['ban', friend.v4, '--data', hubDir]);
        expect(byHand.code).not.toBe(0);
        expect(byHand.out).toMatch(/allowlist/i);
      });

      it('a bulk import of 2,000 bans reaches the kernel sets of agents 2 and 3, every element', async () => {
        const targets = Array.from({ length: 2000 }, (_, i) => `198.18.${i >> 8}.${i & 255}`);
        const file = join(hubDir, 'import.txt');
        writeFileSync(file, `# bulk feed\n${targets.map((t) => `${t} 1h feed`).join('\n')}\n`);
        const out = await cli(hubHost, ['import', file, '--data', hubDir]);
        expect(out).toBe('imported 2000 bans (0 already in force, 0 bad lines)\n');
        const inSet = async (h: Host) => {
          const json = JSON.parse(
            await h.exec('nft', ['-j', 'list', 'set', 'inet', 'rampart', 'blocklist_v4']),
          ) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
          const elems = json.nftables.find((x) => x.set)?.set?.elem ?? [];
          return new Set(
            elems
              .map((e) => /"(198\.18\.\d+\.\d+)"/.exec(JSON.stringify(e))?.[1])
              .filter((a) => a !== undefined),
          );
        };
        for (const h of agents.slice(1)) {
          await until(async () => (await inSet(h)).size >= 2000, 20_000, `2000 bans on ${h.ns}`);
          const got = await inSet(h);
          expect(targets.filter((t) => !got.has(t))).toEqual([]);
        }
      });
    },
  );
}

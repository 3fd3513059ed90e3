import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { buildDetector } from '../../src/agent/detector.js';
import { HubApi } from '../../src/agent/hub-api.js';
import { AgentState } from '../../src/agent/state.js';
import { Allowlist } from '../../src/core/allowlist.js';
import type { Decision } from '../../src/core/decision.js';
import { silentLogger } from '../../src/core/logger.js';
import { builtinRule } from '../../src/detect/rules-file.js';
import { startTestHub, type TestHub, until } from '../hub/helpers.js';
import { RecordingFirewall } from './recording-firewall.js';

const ATTACKER = '198.51.100.70';
const line = (ip: string, i: number) =>
  `web sshd[${100 + i}]: Failed password for invalid user u${i} from ${ip} port ${40000 + i} ssh2`;

/**
 * Two real agents (the real detector with the built-in sshd rule, no bus: hits go over HTTP)
 * against a real hub whose sshd fleet threshold is 4: two failures on each agent, below sshd's
 * local 5, become one fleet ban that both agents enforce.
 */
describe('agents sending below-threshold hits to the hub over HTTP', () => {
  let t: TestHub;
  const agents: Agent[] = [];
  const firewalls: RecordingFirewall[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    t = await startTestHub({ policy: { fleet: { rules: { sshd: { maxretry: 4, findtime: 3600 } } } } });
    for (const name of ['web1', 'web2']) {
      const node = await t.enrol(name);
      const dir = mkdtempSync(join(tmpdir(), `rampart-fleet-agent-${name}-`));
      dirs.push(dir);
      const firewall = new RecordingFirewall();
      firewalls.push(firewall);
      let self: Agent | undefined;
      const agent = new Agent({
        name,
        fleet: t.hub.fleet,
        state: AgentState.open(dir),
        firewall,
        hub: new HubApi(t.hub.url, node.token),
        hubKey: t.hub.publicKey,
        privateKey: node.keys.privateKey,
        detector: buildDetector({
          rules: [builtinRule('sshd')],
          watch: [],
          allowlist: new Allowlist(),
          onBelowThreshold: (rule, ip) => self?.belowThreshold(rule, ip),
        }),
        allowlist: new Allowlist(),
        log: silentLogger(),
        catchUpPollMs: 100,
        fleetHits: { intervalMs: 50 },
      });
      self = agent;
      agents.push(agent);
      await agent.start();
    }
  }, 30_000);

  afterAll(async () => {
    for (const a of agents) await a.close();
    await t?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('two failures on each agent become one fleet ban that both enforce; nothing is banned locally', async () => {
    const banned = new Promise<Decision>((resolve) => {
      const off = t.hub.onDecision((d) => {
        if (d.target !== ATTACKER) return;
        off();
        resolve(d);
      });
    });
    agents.forEach((a, k) => {
      for (let i = 0; i < 2; i++) a.onLine({ text: line(ATTACKER, k * 2 + i), source: 'auth.log' });
    });
    expect(agents.map((a) => a.detections)).toEqual([0, 0]);
    const d = await banned;
    expect(d).toMatchObject({
      origin: 'fleet',
      rule: 'sshd',
      reason: 'sshd: 4 hits from 2 nodes within 1h (fleet-wide)',
    });
    await until(() =>
      firewalls.every((f) => [...f.committed.values()].some((e) => e.target.text === ATTACKER)),
    );
    expect(agents.map((a) => a.fleetHits!.stats.failed)).toEqual([0, 0]);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { HubApi } from '../../src/agent/hub-api.js';
import { AgentState } from '../../src/agent/state.js';
import { parseTarget } from '../../src/core/address.js';
import { Allowlist } from '../../src/core/allowlist.js';
import { silentLogger } from '../../src/core/logger.js';
import type { DetectEvent, LogLine } from '../../src/detect/types.js';
import { startTestHub, type TestHub, until } from '../hub/helpers.js';
import { RecordingFirewall } from './recording-firewall.js';

describe("agent reading the hub's refusal field on reports sent over HTTP", () => {
  let t: TestHub;
  let agent: Agent;
  let dir: string;
  const firewall = new RecordingFirewall();
  const answers: Array<{ target: string; refusal?: string }> = [];

  beforeAll(async () => {
    // One decision of budget: the second report of the node is refused as rate-limited.
    t = await startTestHub({ policy: { rateBurst: 1, ratePerMinute: 0 } });
    await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.0/24' });
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-refusal-'));
    const node = await t.enrol('edge');
    const hub = new HubApi(t.hub.url, node.token);
    agent = new Agent({
      name: 'edge',
      fleet: 'default',
      state: AgentState.open(dir),
      firewall,
      hub: Object.assign(Object.create(hub) as HubApi, {
        report: async (env: Buffer) => {
          const a = await hub.report(env);
          answers.push({
            target: String((a.decision as { target?: string } | undefined)?.target),
            refusal: a.refusal,
          });
          return a;
        },
      }),
      hubKey: t.hub.publicKey,
      privateKey: node.keys.privateKey,
      // Every line is an attack from the address it holds: detection itself is tested elsewhere.
      detector: {
        feed: (line: LogLine): DetectEvent[] => [
          {
            type: 'ban',
            target: parseTarget(line.text),
            rule: 'test',
            at: Date.now(),
            hits: 5,
            duration: 600,
            set: 'blocklist',
            reason: 'test',
          },
        ],
      },
      allowlist: new Allowlist(),
      log: silentLogger(),
    });
    await agent.start();
  });
  afterAll(async () => {
    await agent?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const inFirewall = () => [...firewall.committed.values()].map((e) => e.target.text).sort();

  it('keeps a local ban the hub refused as rate-limited, lifts one it refused as allowlisted', async () => {
    agent.onLine({ text: '198.51.100.1', source: 'test' });
    await until(() => answers.length === 1);
    agent.onLine({ text: '198.51.100.2', source: 'test' });
    await until(() => answers.length === 2);
    agent.onLine({ text: '192.0.2.5', source: 'test' });
    await until(() => answers.length === 3);
    expect(answers.map((a) => a.refusal)).toEqual([undefined, 'rate-limited', 'allowlisted']);
    await agent.committer.flush();
    await until(() => firewall.pending() === 0);
    await agent.committer.flush();
    expect(inFirewall()).toEqual(['198.51.100.1', '198.51.100.2']);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { buildAgent } from '../../src/agent/build.js';
import { joinFleet } from '../../src/agent/join.js';
import type { AgentState } from '../../src/agent/state.js';
import { rampartConfigSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/logger.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';

const TOKEN = 'scrape-me-often-0123456789';
const BANS = 100_000;

// The set-size gauge counts over the agent's whole state: 450-700 ms of the event loop at a
// million bans, once per scrape, until it was bounded to 1 % of the time.
describe('agent /metrics on a big state', () => {
  let t: TestHub;
  let agent: Agent;
  let state: AgentState;
  let dir: string;

  beforeAll(async () => {
    t = await startTestHub();
    dir = mkdtempSync(join(tmpdir(), 'rampart-agent-metrics-cost-'));
    const invite = await t.call('POST', '/v1/nodes', { name: 'big1' });
    await joinFleet({ token: invite.json.token, dataDir: dir });
    const config = rampartConfigSchema.parse({
      agent: { metrics: { listen: '127.0.0.1:0', token: TOKEN } },
      firewall: { backend: 'dry-run' },
    });
    agent = (await buildAgent({ config, dataDir: dir, watch: [], log: silentLogger() })).agent;
    // The agent's own record, filled as the bus path fills it (the firewall is a dry run).
    state = (agent as unknown as { o: { state: AgentState } }).o.state;
    const until = Date.now() + 3_600_000;
    state.batch(() => {
      for (let i = 0; i < BANS; i++)
        state.applyHubBan(i + 1, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'blocklist', until, 'hub');
    });
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes in a row count the state once, and the count is right', async () => {
    const count = vi.spyOn(state, 'countBySet');
    const values: string[] = [];
    for (let i = 0; i < 10; i++) {
      const text = await (
        await fetch(agent.metricsUrl!, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).text();
      values.push(
        /^rampart_agent_set_elements\{set="blocklist",family="4"\} (\d+)$/m.exec(text)?.[1] ?? 'none',
      );
    }
    expect(values).toEqual(Array(10).fill(String(BANS)));
    // 100,000 rows take several ms to count: the next count is due only 100 times that later.
    expect(count.mock.calls.length).toBeLessThanOrEqual(1);
  });
});

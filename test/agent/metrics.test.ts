import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.js';
import { buildAgent } from '../../src/agent/build.js';
import { joinFleet } from '../../src/agent/join.js';
import { rampartConfigSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/logger.js';
import { createLan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';

const TOKEN = 'scrape-me-please-0123456789';

/** One scrape; `value(name, labels)` reads a sample, undefined when absent. */
async function scrape(url: string, token = TOKEN) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const have = Object.fromEntries(
        [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
      );
      if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
    }
    return undefined;
  };
  return { status: res.status, text, value, type: res.headers.get('content-type') };
}

/** Polls an async condition (a scrape, a store read) every 50 ms. */
async function eventually(cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Where the agent enforces: its firewall config, what it should say about itself, and a look at the kernel. */
interface Enforcer {
  firewall: Record<string, unknown>;
  backend: string;
  drivers: string[];
  /** The IPv4 addresses and ranges in the kernel set, where there is one. */
  kernelV4?: () => Promise<string[]>;
  close?: () => Promise<void>;
}

/**
 * A real hub, and an agent built from config as `rampart agent` builds it, scraped over HTTP
 * after a detected ban and two operator bans.
 */
function metricsSuite(title: string, skip: boolean, enforcer: () => Promise<Enforcer>): void {
  describe.skipIf(skip)(title, () => {
    let t: TestHub;
    let agent: Agent;
    let dir: string;
    let url: string;
    let fw: Enforcer;

    beforeAll(async () => {
      fw = await enforcer();
      t = await startTestHub();
      dir = mkdtempSync(join(tmpdir(), 'rampart-agent-metrics-'));
      const invite = await t.call('POST', '/v1/nodes', { name: 'metrics1' });
      await joinFleet({ token: invite.json.token, dataDir: dir });
      const log = join(dir, 'auth.log');
      writeFileSync(
        log,
        Array.from(
          { length: 6 },
          (_, i) =>
            `2026-12-05T10:00:0${i}+00:00 web sshd[${100 + i}]: Failed password for invalid user u${i} from 198.51.100.23 port ${40000 + i} ssh2\n`,
        ).join(''),
      );
      const config = rampartConfigSchema.parse({
        agent: { heartbeatInterval: 1, metrics: { listen: '127.0.0.1:0', token: TOKEN } },
        firewall: fw.firewall,
      });
      const built = await buildAgent({
        config,
        dataDir: dir,
        watch: [log],
        fromStart: true,
        log: silentLogger(),
      });
      agent = built.agent;
      await agent.start();
      url = agent.metricsUrl!;
    });
    afterAll(async () => {
      await agent?.close();
      await t?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      await fw?.close?.();
    });

    it('refuses a scrape without the token or with a wrong one, and serves nothing else', async () => {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expect((await scrape(url, '')).status).toBe(401);
      expect((await scrape(url, 'wrong-token-wrong-token')).status).toBe(401);
      expect((await fetch(url.replace('/metrics', '/'))).status).toBe(404);
    });

    it('after a detected ban and hub bans, every family is there with sane values', async () => {
      // The first heartbeat only sets this node's baseline at the hub; decisions after it are timed.
      await eventually(async () => (await t.hub.store.getNode('metrics1'))?.lastSeen != null);
      for (const target of ['192.0.2.50', '2001:db8::9']) {
        expect((await t.call('POST', '/v1/decisions', { target, duration: '1h' })).status).toBe(201);
      }
      const head = async () => (await t.call('GET', '/v1/health')).json.head as number;
      // The local ban reaches the hub as a report, comes back as a decision; wait for all of it.
      await eventually(async () => {
        const s = await scrape(url);
        const h = await head();
        return (
          h >= 3 &&
          s.value('rampart_agent_applied_seq') === h &&
          s.value('rampart_agent_bus_lag') === 0 &&
          // Committed to the kernel too, not only recorded (the kernel check below reads it back).
          s.value('rampart_agent_kernel_seq') === h
        );
      });
      const s = await scrape(url);
      expect(s.status).toBe(200);
      expect(s.type).toMatch(/^text\/plain/);
      expect(s.value('rampart_agent_lines_read_total')).toBe(6);
      expect(s.value('rampart_agent_matches_total', { rule: 'sshd' })).toBeGreaterThanOrEqual(5);
      expect(s.value('rampart_agent_bans_total', { rule: 'sshd' })).toBe(1);
      expect(s.value('rampart_agent_decisions_applied_total')).toBeGreaterThanOrEqual(3);
      expect(s.value('rampart_agent_commit_duration_seconds_count', { result: 'ok' })).toBeGreaterThanOrEqual(
        1,
      );
      expect(s.value('rampart_agent_commit_duration_seconds_sum', { result: 'ok' })).toBeLessThan(30);
      expect(s.value('rampart_agent_set_elements', { set: 'blocklist', family: '4' })).toBe(2);
      expect(s.value('rampart_agent_set_elements', { set: 'blocklist', family: '6' })).toBe(1);
      expect(s.value('rampart_agent_head_seq')).toBe(await head());
      expect(s.value('rampart_agent_bus_connected')).toBe(1);
      expect(s.value('rampart_agent_dropped_messages_total', { reason: 'bad-signature' })).toBe(0);
      expect(s.value('rampart_agent_dropped_messages_total', { reason: 'allowlisted' })).toBe(0);
      const info = [
        ...s.text.matchAll(/^rampart_agent_firewall_info\{backend="([^"]+)",driver="([^"]+)"\} 1$/gm),
      ];
      expect(info).toHaveLength(1);
      expect(info[0]![1]).toBe(fw.backend);
      expect(fw.drivers).toContain(info[0]![2]);
      // The gauge is the agent's own record; the kernel, where there is one, holds the same.
      if (fw.kernelV4) expect((await fw.kernelV4()).sort()).toEqual(['192.0.2.50', '198.51.100.23']);

      // The hub times decision → heartbeat saying it was applied.
      await eventually(async () => {
        const m = await t.call('GET', '/metrics');
        const count = /^rampart_hub_propagation_seconds_count (\d+)$/m.exec(m.text);
        return count !== null && Number(count[1]) >= 2;
      });
      const hub = (await t.call('GET', '/metrics')).text;
      const sum = Number(/^rampart_hub_propagation_seconds_sum (\S+)$/m.exec(hub)![1]);
      expect(sum).toBeGreaterThan(0);
      expect(sum).toBeLessThan(60);
    });
  });
}

metricsSuite('agent /metrics with the dry-run firewall', false, async () => ({
  firewall: { backend: 'dry-run' },
  backend: 'dry-run',
  drivers: ['none'],
}));

const req = requirements('agent /metrics with nftables in a namespace', ['netns', 'cmd:nft']);
metricsSuite('agent /metrics with nftables in a namespace', req.skip, async () => {
  const lan = await createLan(1, 'amet');
  const host = lan.hosts[0]!;
  return {
    firewall: { backend: 'nftables', exec: ['ip', 'netns', 'exec', host.ns] },
    backend: 'nftables',
    drivers: ['library', 'spawn'],
    kernelV4: async () => {
      const out = JSON.parse(
        await host.exec('nft', ['-j', 'list', 'set', 'inet', 'rampart', 'blocklist_v4']),
      );
      const set = out.nftables.find((x: { set?: unknown }) => x.set).set as { elem?: unknown[] };
      return (set.elem ?? []).map((e) => {
        const v = e as string | { elem: { val: string } };
        return typeof v === 'string' ? v : v.elem.val;
      });
    },
    close: () => lan.destroy(),
  };
});

describe('agent.metrics config', () => {
  it('names the key of a bad listen address or a short token', () => {
    for (const metrics of [
      { listen: 'nowhere' },
      { listen: '127.0.0.1:70000' },
      { listen: ':1', token: 'short' },
    ]) {
      const r = rampartConfigSchema.safeParse({ agent: { metrics } });
      expect(r.success, JSON.stringify(metrics)).toBe(false);
      expect(r.error!.issues[0]!.path.slice(0, 2)).toEqual(['agent', 'metrics']);
    }
    expect(rampartConfigSchema.safeParse({ agent: { metrics: { listen: '9780' } } }).success).toBe(true);
  });
});

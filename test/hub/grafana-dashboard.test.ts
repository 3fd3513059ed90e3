import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AgentMetrics, type AgentMetricsSource } from '../../src/agent/metrics.js';
import { HubMetrics } from '../../src/hub/metrics.js';

const dashboard = JSON.parse(readFileSync('packaging/grafana/rampart.json', 'utf8'));
/** Grafana's reference to the dashboard's datasource variable (literal text, not a JS template). */
const DATASOURCE_VAR = ['$', '{datasource}'].join('');

/** Every metric name the hub and the agent export (no scrape: the registries list them). */
function exported(): Set<string> {
  const hub = new HubMetrics({ active: async () => 0, head: async () => 0 });
  const agent = new AgentMetrics({} as AgentMetricsSource);
  return new Set(
    [...hub.registry.getMetricsAsArray(), ...agent.registry.getMetricsAsArray()].map((m) => m.name),
  );
}

describe('packaging/grafana/rampart.json', () => {
  it('is a Grafana dashboard on a Prometheus datasource variable, with unique panel ids', () => {
    expect(dashboard).toMatchObject({
      uid: expect.any(String),
      title: 'rampart',
      schemaVersion: expect.any(Number),
    });
    const vars = dashboard.templating.list as Array<{ name: string; type: string; query: unknown }>;
    expect(vars).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels.filter((x: { type: string }) => x.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: DATASOURCE_VAR });
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });

  it('queries only metric names the hub and the agent export, and shows each of the agent families', () => {
    const names = exported();
    const used = new Set<string>();
    for (const p of dashboard.panels) {
      for (const target of p.targets ?? []) {
        for (const m of (target.expr as string).matchAll(/rampart_[a-z_]+/g)) {
          const name = m[0].replace(/_(bucket|sum|count)$/, '');
          expect(names.has(name), `${p.title}: ${m[0]}`).toBe(true);
          used.add(name);
        }
      }
    }
    for (const family of [
      'rampart_agent_lines_read_total',
      'rampart_agent_matches_total',
      'rampart_agent_bans_total',
      'rampart_agent_commit_duration_seconds',
      'rampart_agent_set_elements',
      'rampart_agent_bus_lag',
      'rampart_agent_dropped_messages_total',
      'rampart_agent_firewall_info',
      'rampart_hub_propagation_seconds',
    ]) {
      expect(used.has(family), family).toBe(true);
    }
  });
});

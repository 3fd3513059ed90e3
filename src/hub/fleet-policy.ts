import type { RuleSpec } from '../detect/rule.js';
import { builtinRules } from '../detect/rules-file.js';
import type { FleetRule } from './fleet-counter.js';
import type { PolicyConfig } from './policy.js';

/** `hub.policy.fleet`: fleet-wide counting of failures below each agent's local threshold. */
export interface FleetPolicyConfig {
  /** Off: `hits` envelopes are still accepted (and counted as received) but nothing is summed. */
  enabled: boolean;
  /** N: hits one node counts for at most, per address and window. */
  perNode: number;
  /** K: distinct nodes that must have seen an address before a fleet ban. */
  minNodes: number;
  /** Cap on (rule, address) pairs tracked; each costs a few hundred bytes. */
  maxEntries: number;
  /** Thresholds by rule name, over the built-in rules' own `fleet:` (sshd: 10 in 1 h). */
  rules: Record<string, FleetRule>;
}

export const DEFAULT_FLEET_POLICY: FleetPolicyConfig = {
  enabled: true,
  perNode: 2,
  minNodes: 2,
  maxEntries: 100_000,
  rules: {},
};

/** The configured fleet policy over the defaults (`rules` merged by name). */
export function resolveFleetPolicy(
  configured: Partial<FleetPolicyConfig> | undefined,
  defaults: Record<string, FleetRule> = {},
): FleetPolicyConfig {
  const c = configured ?? {};
  return {
    ...DEFAULT_FLEET_POLICY,
    ...c,
    rules: { ...defaults, ...(c.rules ?? {}) },
  };
}

/** The `fleet:` thresholds the built-in rules ship with (rules/*.yaml), by rule name. */
export function builtinFleetRules(): Record<string, FleetRule> {
  return fleetThresholdsOf(builtinRules());
}

/** The `fleet:` thresholds of some rules, by rule name. */
export function fleetThresholdsOf(rules: readonly RuleSpec[]): Record<string, FleetRule> {
  const out: Record<string, FleetRule> = {};
  for (const r of rules) if (r.fleet !== undefined) out[r.name] = { ...r.fleet };
  return out;
}

/**
 * Policy config whose fleet rules also default to `rules`' own thresholds (`rampart up`: the
 * hub and the agent share one config, so the agent's rule files are the hub's too).
 */
export function withFleetDefaults(
  policy: Partial<PolicyConfig> | undefined,
  rules: readonly RuleSpec[],
): Partial<PolicyConfig> {
  const own = fleetThresholdsOf(rules);
  return { ...policy, fleet: { ...policy?.fleet, rules: { ...own, ...policy?.fleet?.rules } } };
}

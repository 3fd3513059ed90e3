import type { RuleSpec } from '../../src/detect/rule.js';

/** A complete RuleSpec for tests: the given patterns, small thresholds, overrides on top. */
export function testRule(patterns: string[], extra: Partial<RuleSpec> = {}): RuleSpec {
  return {
    name: 'test-rule',
    sources: [],
    patterns,
    ignore: [],
    good: [],
    maxretry: 3,
    findtime: 600,
    bantime: 600,
    ignoreNets: [],
    set: 'blocklist',
    ...extra,
  };
}

import { resolve } from 'node:path';
import type { Allowlist } from '../core/allowlist.js';
import { Engine } from '../detect/engine.js';
import type { RuleSpec } from '../detect/rule.js';
import type { DetectEvent, LogLine } from '../detect/types.js';
import type { Detector, DetectorStats } from './agent.js';

/**
 * Detection for the agent. Lines from `--watch` files run every rule whatever the rules' own
 * `sources` say (the operator pointed us at that file on purpose); lines from configured sources
 * go through the rules' source matching.
 */
export function buildDetector(opts: {
  rules: RuleSpec[];
  watch: string[];
  allowlist: Allowlist;
  /** The byte budget of tracked addresses (`rules.trackerMemory`), shared by the engines. */
  maxTrackedBytes?: number;
  onWarning?: (message: string) => void;
  /** Failures below a fleet rule's maxretry (Engine onBelowThreshold); omitted = not reported. */
  onBelowThreshold?: (rule: string, ip: string, at: number) => void;
}): Detector & { engines: Engine[] } {
  const budget = opts.maxTrackedBytes;
  const common = {
    clock: 'wall' as const,
    allowlist: opts.allowlist,
    // Two engines when files are watched: each gets half, so the agent keeps to the budget.
    maxTrackedBytes: budget === undefined || opts.watch.length === 0 ? budget : Math.floor(budget / 2),
    onWarning: opts.onWarning,
    onBelowThreshold: opts.onBelowThreshold,
  };
  const configured = new Engine(opts.rules, common);
  configured.warm();
  if (opts.watch.length === 0) {
    const engines = [configured];
    return { engines, feed: (line) => configured.feed(line), stats: () => engineStats(engines) };
  }
  const watched = new Engine(opts.rules, { ...common, ignoreSources: true });
  watched.warm();
  const paths = new Set(opts.watch.map((p) => resolve(p)));
  const isWatched = (source: string) => paths.has(source) || paths.has(resolve(source));
  const engines = [configured, watched];
  return {
    engines,
    feed: (line: LogLine): DetectEvent[] => (isWatched(line.source) ? watched : configured).feed(line),
    stats: () => engineStats(engines),
  };
}

/** The engines' counters summed: lines read, failure matches and time-budget state per rule. */
function engineStats(engines: Engine[]): DetectorStats {
  const matchesByRule = new Map<string, number>();
  const budgetByRule = new Map<string, { slowLines: number; longLinesOff: boolean }>();
  let lines = 0;
  for (const e of engines) {
    lines += e.stats().lines;
    for (const r of e.ruleMatchCounts())
      matchesByRule.set(r.rule, (matchesByRule.get(r.rule) ?? 0) + r.matches);
    for (const r of e.ruleBudgetStats()) {
      const b = budgetByRule.get(r.rule);
      // Off when either engine took it off long lines: what the operator needs to hear about.
      budgetByRule.set(r.rule, {
        slowLines: (b?.slowLines ?? 0) + r.slowLines,
        longLinesOff: (b?.longLinesOff ?? false) || r.longLinesOff,
      });
    }
  }
  return { lines, matchesByRule, budgetByRule };
}

import { resolve } from 'node:path';
import type { Allowlist } from '../core/allowlist.js';
import { Engine } from '../detect/engine.js';
import type { RuleSpec } from '../detect/rule.js';
import type { DetectEvent, LogLine } from '../detect/types.js';
import type { Detector } from './agent.js';

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
}): Detector & { engines: Engine[] } {
  const budget = opts.maxTrackedBytes;
  const common = {
    clock: 'wall' as const,
    allowlist: opts.allowlist,
    // Two engines when files are watched: each gets half, so the agent keeps to the budget.
    maxTrackedBytes: budget === undefined || opts.watch.length === 0 ? budget : Math.floor(budget / 2),
    onWarning: opts.onWarning,
  };
  const configured = new Engine(opts.rules, common);
  if (opts.watch.length === 0) return { engines: [configured], feed: (line) => configured.feed(line) };
  const watched = new Engine(opts.rules, { ...common, ignoreSources: true });
  const paths = new Set(opts.watch.map((p) => resolve(p)));
  const isWatched = (source: string) => paths.has(source) || paths.has(resolve(source));
  return {
    engines: [configured, watched],
    feed: (line: LogLine): DetectEvent[] => (isWatched(line.source) ? watched : configured).feed(line),
  };
}

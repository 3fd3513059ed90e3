import type { Logger } from '../../core/logger.js';

const EVERY_MS = 10_000;
const MAX_KEYS = 10_000;

/**
 * Logs messages refused from a node (over the bus or HTTP) at most once per node and reason every
 * 10 s, with how many were left out: a flood of junk is counted on the metric one by one but must
 * not cost a log line each.
 */
export class DropLog {
  private readonly last = new Map<string, { at: number; quiet: number }>();

  constructor(
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  note(node: string, reason: string): void {
    const key = `${node}\u0000${reason}`;
    const now = this.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < EVERY_MS) {
      seen.quiet++;
      return;
    }
    if (!seen && this.last.size >= MAX_KEYS) this.last.clear();
    this.last.set(key, { at: now, quiet: 0 });
    this.log.warn(
      { node, reason, ...(seen && seen.quiet > 0 ? { alsoDropped: seen.quiet } : {}) },
      'refused a message from a node (bus or POST /v1/reports)',
    );
  }
}

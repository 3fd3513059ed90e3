import { Counter, Registry } from 'prom-client';
import { DROP_REASONS, type DropCounter } from '../trust/drop-counter.js';
import type { ApplierStats } from './applier.js';

/** Reasons an agent drops a decision after its envelope was accepted. */
export const DECISION_DROP_REASONS = ['bad-set', 'protected', 'allowlisted', 'invalid'] as const;

/**
 * The agent's Prometheus metrics on a registry of its own (the metrics listener, when configured,
 * serves `registry`). Dropped messages are read from the counters the agent already keeps at
 * scrape time, so the hot path pays nothing for them.
 */
export class AgentMetrics {
  readonly registry = new Registry();

  constructor(source: {
    drops: DropCounter;
    stats: ApplierStats;
    /** FleetHitBatcher.stats, when fleet-wide counting is on. */
    fleet?: { batches: number; failed: number; entries: number; dropped: number };
  }) {
    new Counter({
      name: 'rampart_agent_dropped_messages_total',
      help: 'Messages and decisions the agent refused, by reason (envelope checks, bad set name, covers the hub, allowlisted, invalid)',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const r of DROP_REASONS) this.inc({ reason: r }, source.drops.get(r));
        const s = source.stats;
        const byReason = {
          'bad-set': s.badSet,
          protected: s.protected,
          allowlisted: s.allowlisted,
          invalid: s.invalid,
        };
        for (const r of DECISION_DROP_REASONS) this.inc({ reason: r }, byReason[r]);
      },
    });
    const fleet = source.fleet;
    if (fleet === undefined) return;
    new Counter({
      name: 'rampart_agent_fleet_hits_total',
      help: 'Below-threshold failures for fleet-wide counting: entries sent to the hub, or dropped because the batch was full',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'sent' }, fleet.entries);
        this.inc({ result: 'dropped' }, fleet.dropped);
      },
    });
    new Counter({
      name: 'rampart_agent_fleet_batches_total',
      help: 'hits envelopes sent to the hub, by result (sent, failed: neither the bus nor HTTP took it)',
      labelNames: ['result'],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ result: 'sent' }, fleet.batches - fleet.failed);
        this.inc({ result: 'failed' }, fleet.failed);
      },
    });
  }
}

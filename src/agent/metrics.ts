import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DROP_REASONS, type DropCounter } from '../trust/drop-counter.js';
import type { DetectorStats } from './agent.js';
import type { ApplierStats } from './applier.js';

/** Reasons an agent drops a decision after its envelope was accepted. */
export const DECISION_DROP_REASONS = ['bad-set', 'protected', 'allowlisted', 'invalid'] as const;

/** Where the metrics read their values at scrape time: counters the agent keeps anyway. */
export interface AgentMetricsSource {
  drops: DropCounter;
  stats: ApplierStats;
  /** Lines read and matches per rule (the detection engines' own counters). */
  detector: () => DetectorStats | undefined;
  /** Bans detection made, by rule (bumped once per ban, not per line). */
  bansByRule: ReadonlyMap<string, number>;
  /** Elements per kernel set from the agent's own record (never by listing the kernel). */
  setSizes: () => Array<{ set: string; family: 4 | 6; n: number }>;
  appliedSeq: () => number;
  /** The highest log seq heard of: the hub's head as far as this agent knows. */
  headSeen: () => number;
  /** The highest log seq whose firewall commit succeeded (DecisionApplier.kernelSeq). */
  kernelSeq?: () => number;
  firewall: () => { backend: string; driver: string };
  busConnected: () => boolean | undefined;
  /** FleetHitBatcher.stats, when fleet-wide counting is on. */
  fleet?: { batches: number; failed: number; entries: number; dropped: number };
}

/** Commit latency buckets: a library commit takes well under a millisecond, a million-element spawn seconds. */
const COMMIT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The agent's Prometheus metrics on a registry of its own (served by agent/metrics-server.ts when
 * `agent.metrics.listen` is set). Everything but the commit histogram is read from counters the
 * agent already keeps, at scrape time, so the hot path (one line, one decision) pays nothing.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  /** Observed by the committer after each kernel commit. */
  readonly commitSeconds: Histogram<'result'>;

  constructor(source: AgentMetricsSource) {
    const registers = [this.registry];
    new Counter({
      name: 'rampart_agent_dropped_messages_total',
      help: 'Messages and decisions the agent refused, by reason (envelope checks, bad set name, covers the hub, allowlisted, invalid)',
      labelNames: ['reason'],
      registers,
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
    new Counter({
      name: 'rampart_agent_lines_read_total',
      help: 'Log lines handed to detection',
      registers,
      collect() {
        this.reset();
        this.inc(source.detector()?.lines ?? 0);
      },
    });
    new Counter({
      name: 'rampart_agent_matches_total',
      help: 'Failure matches by rule (lines that counted against an address)',
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const [rule, n] of source.detector()?.matchesByRule ?? []) this.inc({ rule }, n);
      },
    });
    new Counter({
      name: 'rampart_agent_rule_slow_lines_total',
      help: 'Long lines a rule not shipped with rampart took more than its time budget on (docs/detection.md)',
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const [rule, b] of source.detector()?.budgetByRule ?? []) this.inc({ rule }, b.slowLines);
      },
    });
    new Gauge({
      name: 'rampart_agent_rule_long_lines_off',
      help: 'Rules no longer matched against long lines after too many went over their time budget (1), else 0',
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const [rule, b] of source.detector()?.budgetByRule ?? [])
          this.set({ rule }, b.longLinesOff ? 1 : 0);
      },
    });
    new Counter({
      name: 'rampart_agent_bans_total',
      help: "Bans this agent's detection made, by rule (enforced at once and reported to the hub)",
      labelNames: ['rule'],
      registers,
      collect() {
        this.reset();
        for (const [rule, n] of source.bansByRule) this.inc({ rule }, n);
      },
    });
    new Counter({
      name: 'rampart_agent_decisions_applied_total',
      help: "Decisions from the hub's log applied, in seq order",
      registers,
      collect() {
        this.reset();
        this.inc(source.stats.applied);
      },
    });
    // Gaps seen on the bus and HTTP catch-up runs: a fleet whose bus delivers out of order (two
    // hubs publishing at once) shows here as catch-ups that a single hub would not need.
    new Counter({
      name: 'rampart_agent_log_gaps_total',
      help: 'Times a decision arrived on the bus ahead of a missing seq (held while the hole is filled)',
      registers,
      collect() {
        this.reset();
        this.inc(source.stats.gaps);
      },
    });
    new Counter({
      name: 'rampart_agent_catch_ups_total',
      help: "Catch-up runs that read the hub's log over HTTP (after a gap, a reconnect or a start)",
      registers,
      collect() {
        this.reset();
        this.inc(source.stats.catchUps);
      },
    });
    this.commitSeconds = new Histogram({
      name: 'rampart_agent_commit_duration_seconds',
      help: 'Time to apply one batch of staged changes to the kernel, by result (ok, failed)',
      labelNames: ['result'],
      buckets: COMMIT_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'rampart_agent_set_elements',
      help: 'Bans in force per logical set and family, as the agent applied them to its kernel sets (a count over its state, redone at most 1% of the time: at a million bans, up to a minute old)',
      labelNames: ['set', 'family'],
      registers,
      collect() {
        this.reset();
        for (const s of source.setSizes()) this.set({ set: s.set, family: String(s.family) }, s.n);
      },
    });
    new Gauge({
      name: 'rampart_agent_applied_seq',
      help: 'Last decision log seq applied',
      registers,
      collect() {
        this.set(source.appliedSeq());
      },
    });
    if (source.kernelSeq) {
      const kernelSeq = source.kernelSeq;
      new Gauge({
        name: 'rampart_agent_kernel_seq',
        help: 'Last decision log seq in the kernel (its firewall commit succeeded); below applied_seq while a commit is pending or failing',
        registers,
        collect() {
          this.set(kernelSeq());
        },
      });
    }
    new Gauge({
      name: 'rampart_agent_head_seq',
      help: 'Highest decision log seq this agent has heard of (live messages and catch-up)',
      registers,
      collect() {
        this.set(Math.max(source.headSeen(), source.appliedSeq()));
      },
    });
    new Gauge({
      name: 'rampart_agent_bus_lag',
      help: 'Decisions known to exist and not applied yet (head seq minus applied seq)',
      registers,
      collect() {
        this.set(Math.max(0, source.headSeen() - source.appliedSeq()));
      },
    });
    new Gauge({
      name: 'rampart_agent_bus_connected',
      help: '1 while the bus connection is up, 0 while down (catch-up runs over HTTP then)',
      registers,
      collect() {
        const up = source.busConnected();
        if (up === undefined) this.reset();
        else this.set(up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'rampart_agent_firewall_info',
      help: 'The firewall backend and how it reaches the kernel (driver: library in-process, spawn, none)',
      labelNames: ['backend', 'driver'],
      registers,
      collect() {
        this.reset();
        this.set(source.firewall(), 1);
      },
    });
    const fleet = source.fleet;
    if (fleet === undefined) return;
    new Counter({
      name: 'rampart_agent_fleet_hits_total',
      help: 'Below-threshold failures for fleet-wide counting: entries sent to the hub, or dropped because the batch was full',
      labelNames: ['result'],
      registers,
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
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'sent' }, fleet.batches - fleet.failed);
        this.inc({ result: 'failed' }, fleet.failed);
      },
    });
  }
}

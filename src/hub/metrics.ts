import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The hub's Prometheus metrics, on a registry of its own so several hubs in one process (tests,
 * `rampart up`) never clash over the global default registry.
 */
export class HubMetrics {
  readonly registry = new Registry();
  readonly reports: Counter<'result'>;
  readonly decisions: Counter<'action' | 'origin'>;
  readonly dropped: Counter<'reason'>;
  readonly publishFailures: Counter;
  readonly propagation: Histogram;
  /** Fleet-wide counting (hub/fleet-counter.ts). */
  readonly fleetCounts: Counter<'result'>;
  readonly fleetBans: Counter<'result'>;
  readonly fleetEntries: Gauge;
  readonly fleetEvictions: Counter;
  readonly republished: Counter;
  readonly sealed: Counter;
  readonly held: Counter;
  /** Bus messages waiting in the per-node intake queues; set by the hub once its intake exists. */
  intakeQueued: () => number = () => 0;

  constructor(collect: { active: () => Promise<number>; head: () => Promise<number> }) {
    const registers = [this.registry];
    this.reports = new Counter({
      name: 'rampart_hub_reports_total',
      help: 'Reports received from nodes, by result (ban, extend, duplicate, or the refusal reason)',
      labelNames: ['result'],
      registers,
    });
    this.decisions = new Counter({
      name: 'rampart_hub_decisions_total',
      help: 'Decisions appended to the log, by action and origin (node name, operator, api)',
      labelNames: ['action', 'origin'],
      registers,
    });
    this.dropped = new Counter({
      name: 'rampart_hub_dropped_messages_total',
      help: 'Bus or HTTP messages refused before policy, by reason (unsigned, bad-signature, replay, topic-mismatch, queue-full, over-budget, ...)',
      labelNames: ['reason'],
      registers,
    });
    this.publishFailures = new Counter({
      name: 'rampart_hub_publish_failures_total',
      help: 'Envelopes of decisions the bus refused to take (sent again later, or recovered by catch-up)',
      registers,
    });
    this.republished = new Counter({
      name: 'rampart_hub_republished_decisions_total',
      help: 'Decisions sent again after the bus had refused them',
      registers,
    });
    this.sealed = new Counter({
      name: 'rampart_hub_decision_envelopes_total',
      help: 'Envelopes of decisions sealed for the bus, by kind (decision, decisions, decisions-packed: ADR 0052)',
      labelNames: ['kind'],
      registers,
    });
    this.held = new Counter({
      name: 'rampart_hub_bus_holds_total',
      help: 'Times the embedded broker stopped reading a node for a while because the hub kept refusing its messages',
      registers,
    });
    this.propagation = new Histogram({
      name: 'rampart_hub_propagation_seconds',
      help: "Decision created to a node's heartbeat saying it applied it (an upper bound: plus up to one heartbeat interval)",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60, 120, 300],
      registers,
    });
    this.fleetCounts = new Counter({
      name: 'rampart_hub_fleet_counts_total',
      help: 'Entries of hits envelopes (failures below an agent threshold) received, by result (counted, unknown-rule, allowlisted, disabled)',
      labelNames: ['result'],
      registers,
    });
    this.fleetBans = new Counter({
      name: 'rampart_hub_fleet_bans_total',
      help: 'Fleet thresholds crossed, by what policy made of them (ban, extend, duplicate, or the refusal reason)',
      labelNames: ['result'],
      registers,
    });
    this.fleetEntries = new Gauge({
      name: 'rampart_hub_fleet_table_entries',
      help: '(rule, address) pairs the fleet counter tracks now',
      registers,
    });
    this.fleetEvictions = new Counter({
      name: 'rampart_hub_fleet_evictions_total',
      help: 'Fleet counter entries dropped because the table was full',
      registers,
    });
    new Gauge({
      name: 'rampart_hub_active_bans',
      help: 'Bans in force now',
      registers,
      async collect() {
        this.set(await collect.active());
      },
    });
    const metrics = this;
    new Gauge({
      name: 'rampart_hub_intake_queued_messages',
      help: 'Bus messages from nodes waiting in the hub intake queues now (a backlog that stays high means the hub cannot keep up)',
      registers,
      collect() {
        this.set(metrics.intakeQueued());
      },
    });
    new Gauge({
      name: 'rampart_hub_log_head',
      help: 'Highest sequence number in the decision log',
      registers,
      async collect() {
        this.set(await collect.head());
      },
    });
  }

  /** Every labelled value of a counter, e.g. dropped messages by reason, for `/v1/status`. */
  async byLabel(name: string, label: string): Promise<Record<string, number>> {
    const m = await this.registry.getSingleMetric(name)?.get();
    const out: Record<string, number> = {};
    for (const v of m?.values ?? []) out[String(v.labels[label])] = v.value;
    return out;
  }

  /** Current value of a counter with labels, for `rampart status` and tests. */
  async value(name: string, labels: Record<string, string>): Promise<number> {
    const m = await this.registry.getSingleMetric(name)?.get();
    const hit = m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
    return hit?.value ?? 0;
  }
}

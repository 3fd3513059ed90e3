import type { KeyObject } from 'node:crypto';
import { type Transport, topics } from '../bus/transport.js';
import { tryParseTarget } from '../core/address.js';
import type { Allowlist } from '../core/allowlist.js';
import { costBounded } from '../core/cost-bounded.js';
import type { Decision } from '../core/decision.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { PACKED_DECISIONS, packedSeqs, unpackDecisions } from '../core/packed-decisions.js';
import { collectGarbage } from '../core/release-memory.js';
import type { DetectEvent, LogLine } from '../detect/types.js';
import { type DesiredStream, REBUILD_ABOVE } from '../firewall/reconcile.js';
import type { Firewall, KernelScan } from '../firewall/types.js';
import type { Source } from '../sources/types.js';
import {
  DropCounter,
  openPeeked,
  type PeekedEnvelope,
  peek,
  peekBody,
  ReplayCache,
  seal,
} from '../trust/envelope.js';
import { DecisionApplier } from './applier.js';
import { Committer } from './committer.js';
import { checkDecision } from './decision-check.js';
import { FleetHitBatcher } from './fleet-hits.js';
import type { HubApi } from './hub-api.js';
import { IdleMemory } from './idle-memory.js';
import type { AgentMetrics } from './metrics.js';
import { type MetricsListen, type MetricsServer, startMetricsServer } from './metrics-server.js';
import { Outbox, type ReportAnswer, type ReportBody } from './outbox.js';
import type { AgentState } from './state.js';

/** Anything that turns log lines into ban/unban events (detect/engine.ts Engine). */
export interface Detector {
  feed(line: LogLine): DetectEvent[];
  /** Counters for metrics, read at scrape time. */
  stats?(): DetectorStats;
}

/** Lines detection has read, and failure matches per rule, since start. */
export interface DetectorStats {
  lines: number;
  matchesByRule: Map<string, number>;
  /**
   * Per rule the time budget watches (not shipped with rampart): long lines over its budget, and
   * whether it no longer reads long lines (detect/engine.ts RuleBudget).
   */
  budgetByRule?: Map<string, { slowLines: number; longLinesOff: boolean }>;
}

const MAX_DECISIONS_ENVELOPE_BYTES = 1024 * 1024;
/** From the end of start-up (bus up, caught up) to the start-up memory release. */
const STARTUP_SETTLE_MS = 500;
/** Kinds taken on the decisions topic. */
const DECISION_KINDS: readonly string[] = ['decision', 'decisions', PACKED_DECISIONS];
/** Decision kinds beyond `decision`/`decisions` this agent reads, announced in its heartbeat. */
const READS = [PACKED_DECISIONS];

export interface AgentOptions {
  /** Node name (enrolled at the hub), the envelope sender. */
  name: string;
  fleet: string;
  state: AgentState;
  firewall: Firewall;
  hub: HubApi;
  /** The hub key pinned at join: the only signer whose decisions are applied. */
  hubKey: KeyObject;
  privateKey: KeyObject;
  transport?: Transport;
  sources?: Source[];
  detector?: Detector;
  allowlist: Allowlist;
  /** The hub and broker addresses (agent/protected.ts): never banned here. */
  protected?: Allowlist;
  log: Logger;
  /** Repairs kernel drift (firewall/reconcile.ts sync); default re-adds every desired ban. */
  reconcile?: (fw: Firewall, desired: DesiredStream, scan?: KernelScan) => Promise<unknown>;
  reconcileMs?: number;
  heartbeatMs?: number;
  /**
   * While the bus is down (or there is none), the HTTP catch-up runs this often, so a ban still
   * arrives within seconds of the hub being back while the bus reconnects. Default 2 s.
   */
  catchUpPollMs?: number;
  windowMs?: number;
  encryptKey?: Buffer;
  /**
   * `rampart up`: the hub in this process takes reports directly (Outbox `handOver`); the outbox
   * still records each one durably first and falls back to HTTP and the bus.
   */
  handReport?: (body: ReportBody) => Promise<ReportAnswer>;
  /**
   * `rampart up` on its embedded broker: every decision reaches this agent in-process first, so the
   * bus copy of one it holds is dropped before the signature check (see `heldAlready`). Only
   * there: the embedded broker lets nobody but the hub publish decisions, so no forgery goes
   * uncounted; on any other bus a forged or replayed message is verified and counted by reason.
   */
  dropHeldCopies?: boolean;
  /**
   * `rampart agent`: keep an agent that waits small (agent/idle-memory.ts): the optimising
   * compiler held while work is light, and V8's low-memory collection once start-up is over (the
   * bus up and caught up; without a bus, the first catch-up) and after later work, once quiet.
   */
  idleMemory?: boolean;
  /** Runs last when the agent has stopped (frees the data folder's lock). */
  onClosed?: () => Promise<void>;
  version?: string;
  /** Observes every decision applied (benchmarks, metrics). */
  onApplied?: (d: Decision) => void;
  /** `agent.metrics`: serve `/metrics` there (port 0 picks one; see {@link Agent.metricsUrl}). */
  metrics?: MetricsListen;
  /**
   * Send failures below the local threshold to the hub for fleet-wide counting (a `hits`
   * envelope every `intervalMs`, default 2 s); the detector feeds {@link Agent.belowThreshold}.
   */
  fleetHits?: { intervalMs?: number; maxEntries?: number; minGapMs?: number };
}

/**
 * The agent: enforces the fleet's decisions on this server and reports what its own logs show.
 * Start order matters: the durable copy goes into the firewall before any network, so a reboot
 * never leaves a window; shutdown runs the other way (sources, detection, bus, firewall, store).
 */
export class Agent {
  readonly drops = new DropCounter();
  readonly applier: DecisionApplier;
  readonly outbox: Outbox;
  readonly committer: Committer;
  /**
   * Prometheus metrics (agent/metrics.ts), built at start when `metrics` is configured: without a
   * listener nothing reads them, and the client library is ≈ 2 MB an idle agent keeps (ADR 0039).
   */
  metrics: AgentMetrics | undefined;
  /** Below-threshold failures waiting for the next `hits` batch; undefined when off. */
  readonly fleetHits: FleetHitBatcher | undefined;
  detections = 0;
  /** Bans this agent's detection made, by rule. */
  readonly bansByRule = new Map<string, number>();
  private metricsServer: MetricsServer | undefined;
  /** With `idleMemory`: told of each piece of work as it begins. */
  readonly idle: IdleMemory | undefined;
  private readonly replay = new ReplayCache();
  /**
   * Counts over the whole state, for the metrics and the heartbeat, so recomputed at most 1 % of
   * the time: at a million bans, set sizes took 450-700 ms of the event loop per scrape (a sort
   * by set), the plain count 90 ms per heartbeat.
   */
  private readonly setSizes = costBounded(() => this.o.state.countBySet());
  private readonly activeCount = costBounded(() => this.o.state.activeCount());
  private readonly timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | null = null;
  private started = false;
  private busUp = false;

  constructor(private readonly o: AgentOptions) {
    this.committer = new Committer(o.firewall, o.log);
    this.idle = o.idleMemory ? new IdleMemory() : undefined;
    this.applier = new DecisionApplier({
      state: o.state,
      firewall: o.firewall,
      committer: this.committer,
      allowlist: o.allowlist,
      protected: o.protected,
      log: o.log,
      fetchSince: async (since) => {
        const page = await o.hub.decisions(since);
        this.idle?.work(page.decisions.length);
        return page;
      },
      onApplied: o.onApplied,
    });
    this.fleetHits = o.fleetHits
      ? new FleetHitBatcher({ ...o.fleetHits, send: (b) => this.sendHits(b) })
      : undefined;
    this.outbox = new Outbox({
      state: o.state,
      node: o.name,
      privateKey: o.privateKey,
      transport: o.transport,
      topic: topics.reports(o.fleet, o.name),
      post: (env) => o.hub.report(env),
      handOver: o.handReport,
      onAnswer: (body, answer) => this.onVerdict(body, answer),
      log: o.log,
      encryptKey: o.encryptKey,
    });
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { o } = this;
    await o.firewall.init();
    if (o.metrics) {
      const { AgentMetrics } = await import('./metrics.js');
      const metrics = new AgentMetrics({
        drops: this.drops,
        stats: this.applier.stats,
        detector: () => o.detector?.stats?.(),
        bansByRule: this.bansByRule,
        // Read only while the listener is up: it closes before the state does.
        setSizes: this.setSizes,
        appliedSeq: () => o.state.lastSeq(),
        headSeen: () => this.applier.headSeen,
        kernelSeq: () => this.applier.kernelSeq,
        firewall: () => ({ backend: o.firewall.name, driver: o.firewall.driver ?? 'none' }),
        busConnected: () => (o.transport ? this.busUp : undefined),
        fleet: this.fleetHits?.stats,
      });
      this.committer.onCommit = (seconds, ok) =>
        metrics.commitSeconds.observe({ result: ok ? 'ok' : 'failed' }, seconds);
      this.metrics = metrics;
      this.metricsServer = await startMetricsServer(o.metrics, metrics.registry, o.log);
    }
    this.idle?.work(o.state.activeCount());
    const restored = await this.applier.restore();
    o.log.info({ restored, lastSeq: o.state.lastSeq(), backend: o.firewall.name }, 're-applied local bans');

    if (o.transport) {
      const t = o.transport;
      t.onStatus((status) => {
        o.log.info({ status }, 'bus');
        this.busUp = status === 'up';
        this.outbox.setBusUp(this.busUp);
        if (status !== 'up') return;
        // At once, not a heartbeat interval later: it tells the hub (perhaps restarted) what
        // this agent reads (ADR 0052).
        this.heartbeat();
        // Whatever was published while we were away: fetch it from the log.
        void this.applier.catchUp();
      });
      // Subscribed before connecting: a transport that is down sends the filter when it comes
      // up, so a broker unreachable at start still feeds us once it is back.
      await t.subscribe(topics.decisions(o.fleet), (_topic, payload) => this.onMessage(payload));
      t.connect()
        .then(() => {
          this.busUp = true;
          this.outbox.setBusUp(true);
          return this.applier.catchUp();
        })
        .then(() => this.startupOver())
        .catch((err) =>
          o.log.error({ err: (err as Error).message }, 'bus connect failed; using HTTP until it is back'),
        );
    }
    const first = this.applier.catchUp();
    if (!o.transport) void first.then(() => this.startupOver());
    void this.outbox.kick();
    this.fleetHits?.start();

    for (const src of o.sources ?? []) {
      await src.start((line) => this.onLine(line));
    }
    // Also a catch-up over HTTP each time: a bus that stalls without dropping the connection (a
    // broker consumer lost in a cluster failure) shows no gap until the next live decision.
    this.every(o.reconcileMs ?? 60_000, async () => {
      await this.applier.catchUp();
      await this.reconcile();
    });
    this.every(o.heartbeatMs ?? 10_000, () => this.heartbeat());
    this.every(o.catchUpPollMs ?? 2_000, () => {
      if (!this.busUp && !this.closing) void this.applier.catchUp();
    });
    signal?.addEventListener('abort', () => void this.close(), { once: true });
  }

  /**
   * Start-up has loaded its modules and grown V8's young generation to its cap; an agent then
   * mostly idles. Half a second later (the first decisions of a catch-up are committed by then),
   * V8's low-memory collection hands that back (ADR 0051, 0056).
   */
  private startupOver(): void {
    if (!this.closing) this.idle?.startupOver(STARTUP_SETTLE_MS);
  }

  /** Where `/metrics` is served (with the bound port), when `metrics` is configured and started. */
  get metricsUrl(): string | undefined {
    return this.metricsServer?.url;
  }

  /** Feeds one line to detection directly (also what sources call). */
  onLine(line: LogLine): void {
    if (!this.o.detector || this.closing) return;
    this.idle?.work(1);
    let events: DetectEvent[];
    try {
      events = this.o.detector.feed(line);
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, source: line.source }, 'detection failed on a line');
      return;
    }
    for (const ev of events) this.onEvent(ev);
  }

  /** The detector's hook (Engine onBelowThreshold): one failure that stayed below `maxretry`. */
  belowThreshold(rule: string, ip: string): void {
    if (!this.closing) this.fleetHits?.add(rule, ip);
  }

  /** Seals a `hits` batch; over the bus when it is up, else over HTTP (POST /v1/reports). */
  private async sendHits(body: unknown): Promise<void> {
    const { o } = this;
    const env = seal('hits', body, o.name, o.privateKey, { encryptKey: o.encryptKey });
    if (o.transport && this.outbox.busIsUp) {
      try {
        await o.transport.publish(topics.reports(o.fleet, o.name), env);
        return;
      } catch (err) {
        o.log.debug({ err: (err as Error).message }, 'hits publish failed; trying HTTP');
      }
    }
    await o.hub.report(env);
  }

  /** Runs a reconcile pass now and forgets expired bans. */
  async reconcile(): Promise<void> {
    const { o } = this;
    let heavy = false;
    try {
      const desiredCount = this.applier.desiredCount();
      const big = desiredCount > REBUILD_ABOVE;
      // A big set's pass may walk every ban; a small one mostly reads a generation number.
      if (big) this.idle?.work(desiredCount);
      // Every size is scanned where the backend can (nftables in-process): a pass whose kernel
      // nobody else touched since the last verified one reads one generation number, where a
      // listing of even a small set meant a kernel worker thread started each minute. Unless bans
      // expired since: the kernel's timeouts run on their own clock, so it is read and compared.
      const expired = o.state.pruneExpired();
      const look = () => o.firewall.scan?.({ fresh: expired > 0 });
      // A big set is read before the lock: a whole read may take long, and commits go on meanwhile
      // (what they change is seen again, harmlessly, by the repair; ADR 0043). A small one is read
      // inside it (a few netlink messages): a burst committed during the read would otherwise be
      // added again and reported as drift.
      let scan = big ? await look() : undefined;
      // A kernel read, a repair or a rebuild leaves a big set's worth of garbage behind.
      heavy = big && scan?.quiet !== true;
      await this.committer.exclusive(async () => {
        if (!big) scan = await look();
        // Computed inside the lock: everything committed so far is in the state, so nothing the
        // kernel holds legitimately can look like drift.
        o.state.pruneExpired();
        const desired = this.applier.desiredStream();
        if (o.reconcile) {
          // A repair reads it in pages, a rebuild streams it; only a small diff holds objects.
          const r = (await o.reconcile(o.firewall, desired, scan)) as
            | { counts?: { added: number; deleted: number; renewed?: number; refilled?: number } }
            | undefined;
          const repaired = { added: 0, deleted: 0, renewed: 0, refilled: 0, ...r?.counts };
          if (repaired.added + repaired.deleted + repaired.renewed > 0)
            o.log.warn({ ...repaired, desired: desired.count }, 'reconcile repaired firewall drift');
          else if (repaired.refilled > 0)
            // Could not tell what drifted (a big set not read this time): everything put back.
            o.log.info(
              { refilled: repaired.refilled, desired: desired.count },
              'reconcile refilled firewall sets',
            );
          else o.log.debug({ desired: desired.count }, 'reconcile: no drift');
        } else {
          for (const e of desired.entries()) o.firewall.add(e.target, e.timeout, e.set);
          await o.firewall.commit();
        }
      });
    } catch (err) {
      o.log.error({ err: (err as Error).message }, 'reconcile failed');
    }
    if (heavy) collectGarbage();
  }

  /** Idempotent: sources → detection → bus drain → firewall commit → store close. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { o } = this;
    for (const t of this.timers) clearInterval(t);
    this.idle?.stop();
    await this.metricsServer?.close();
    for (const src of o.sources ?? []) await src.stop().catch(() => {});
    this.applier.stop();
    // Before the bus goes: the last hits batch, bounded like the outbox below.
    if (this.fleetHits)
      await Promise.race([this.fleetHits.close(), new Promise<void>((r) => setTimeout(r, 500).unref())]);
    // The hub may be gone: abort requests in flight, and give a publish waiting for its PUBACK
    // half a second at most (the outbox is durable; the next start delivers it).
    o.hub.abort();
    await Promise.race([this.outbox.close(), new Promise<void>((r) => setTimeout(r, 500).unref())]);
    await o.transport?.close().catch(() => {});
    await this.committer.flush().catch(() => {});
    this.committer.stop();
    await o.firewall.shutdown().catch(() => {});
    o.state.close();
    await o.onClosed?.().catch(() => {});
  }

  private onEvent(ev: DetectEvent): void {
    const { o } = this;
    if (ev.type === 'unban') {
      this.applier.forgiveLocal(ev.target, ev.set);
      return;
    }
    this.detections++;
    this.bansByRule.set(ev.rule, (this.bansByRule.get(ev.rule) ?? 0) + 1);
    if (!this.applier.local(ev.target, ev.duration, ev.set, o.name)) return;
    // Written on the next turn, behind the ban's commit (scheduled first): logs go to stdout
    // synchronously, and a slow reader there (journald, a pipe) must not hold the ban back.
    const line = { target: ev.target.text, rule: ev.rule, hits: ev.hits };
    setImmediate(() => o.log.info(line, 'banned locally; reporting to the hub'));
    this.outbox.push({
      target: ev.target.text,
      rule: ev.rule,
      reason: ev.reason,
      hits: ev.hits,
      duration: ev.duration,
      at: ev.at,
      set: ev.set,
    });
  }

  /**
   * The hub refused a report for an address it will never ban (fleet allowlist, unbannable): lift
   * the local ban. A rate-limit refusal keeps it: this server is still under attack. A hub that
   * does not say which refusal it was is read from its words.
   */
  private onVerdict(body: ReportBody, answer: ReportAnswer): void {
    if (answer.result !== 'refused') return;
    const rateLimited =
      answer.refusal !== undefined
        ? answer.refusal === 'rate-limited'
        : /rate|budget/i.test(answer.reason ?? '');
    if (rateLimited) return;
    const t = tryParseTarget(body.target);
    if (t && this.applier.forgiveLocal(t, body.set)) {
      this.o.log.info({ target: t.text, reason: answer.reason }, 'hub refused the ban: lifted locally');
    }
  }

  /**
   * Resolves once what the message carried is in the kernel, so a transport with broker acks
   * (NATS, AMQP) acknowledges only then; rejects when that commit failed (the broker redelivers;
   * duplicates are dropped by seq). Dropped messages resolve at once: redelivery cannot fix them.
   */
  private async onMessage(payload: Buffer): Promise<void> {
    const failuresBefore = this.committer.failures;
    if (!this.take(payload)) return;
    await this.applier.commit();
    if (this.committer.failures > failuresBefore) {
      throw new RampartError('E_FIREWALL', 'firewall commit failed; the decision stays unacknowledged');
    }
  }

  /**
   * Whether every decision a message claims to carry is at or below the seq this agent has
   * applied: under `rampart up` a copy of what the hub handed over in-process before the bus
   * delivered it. Dropped before the signature check, which would only confirm a copy; the claim
   * is unverified, so it may drop a message, never act on one (`dropHeldCopies`).
   */
  private heldAlready(peeked: PeekedEnvelope): boolean {
    if (!DECISION_KINDS.includes(peeked.kind)) return false;
    const body = peekBody(peeked);
    const held = this.o.state.lastSeq();
    if (peeked.kind === PACKED_DECISIONS) {
      const run = packedSeqs(body);
      if (run === undefined || run.last > held) return false;
      this.applier.stats.duplicates += run.last - run.first + 1;
      return true;
    }
    const below = (d: unknown) =>
      typeof d === 'object' &&
      d !== null &&
      typeof (d as { seq?: unknown }).seq === 'number' &&
      (d as { seq: number }).seq <= held;
    const all = Array.isArray(body) ? body.length > 0 && body.every(below) : below(body);
    if (all) this.applier.stats.duplicates += Array.isArray(body) ? body.length : 1;
    return all;
  }

  /** Verifies and stages one decisions message; false when nothing was staged. */
  private take(payload: Buffer): boolean {
    // A `decisions` envelope carries up to 500; the bus itself stops packets over 1 MiB.
    const peeked = peek(payload, MAX_DECISIONS_ENVELOPE_BYTES);
    if (!peeked.ok) {
      this.drops.inc(peeked.reason);
      this.o.log.warn({ reason: peeked.reason }, 'decision message dropped');
      return false;
    }
    if (this.o.dropHeldCopies === true && this.heldAlready(peeked.env)) return false;
    const res = openPeeked(peeked.env, {
      keyFor: (from) => (from === 'hub' ? this.o.hubKey : undefined),
      replay: this.replay,
      windowMs: this.o.windowMs,
      expectKind: DECISION_KINDS,
      drops: this.drops,
      decryptKey: this.o.encryptKey,
    });
    if (!res.ok) {
      this.o.log.warn({ reason: res.reason }, 'decision message dropped');
      return false;
    }
    const { kind, body: signed } = res.env;
    const bodies =
      kind === PACKED_DECISIONS ? unpackDecisions(signed) : kind === 'decisions' ? signed : [signed];
    if (!Array.isArray(bodies) || bodies.length === 0) {
      this.drops.inc('malformed');
      this.o.log.warn('signed decisions envelope without a list dropped');
      return false;
    }
    const list = this.checked(bodies);
    this.idle?.work(list.length);
    if (list.length === 1) {
      this.o.log.debug({ seq: list[0]!.seq, target: list[0]!.target }, 'decision received');
    } else if (list.length > 1) {
      this.o.log.debug(
        { first: list[0]!.seq, last: list.at(-1)!.seq, count: list.length },
        'decisions received',
      );
    }
    this.applyDecisions(list);
    return list.length > 0;
  }

  /**
   * The valid decisions of a signed list, in seq order. A bad element is skipped alone: its seq
   * becomes a gap that catch-up fills from the log. Apart from `take` so that V8 optimises this
   * loop on its own rather than all of `take` around it (ADR 0057).
   */
  private checked(bodies: unknown[]): Decision[] {
    // Kept in place (the list is this message's own, parsed or unpacked here): a second array of
    // up to 10,000 was garbage per message on the bulk path (ADR 0068).
    const list = bodies as Decision[];
    let kept = 0;
    let sorted = true;
    for (let i = 0; i < bodies.length; i++) {
      const d = checkDecision(bodies[i]);
      if (d) {
        if (kept > 0 && d.seq < list[kept - 1]!.seq) sorted = false;
        list[kept++] = d;
      } else {
        this.drops.inc('malformed');
        this.o.log.warn('signed decision with an invalid body dropped');
      }
    }
    list.length = kept;
    if (!sorted) list.sort((a, b) => a.seq - b.seq);
    return list;
  }

  /**
   * Applies hub decisions already trusted (verified off the bus, or handed over by a hub in this
   * process), in seq order, in one state transaction; their commit is scheduled.
   */
  applyDecisions(list: Decision[]): void {
    if (list.length === 0) return;
    this.o.state.batch(() => this.applier.liveRun(list));
  }

  private heartbeat(): void {
    const { o } = this;
    if (this.closing) return;
    const body = {
      lastSeq: o.state.lastSeq(),
      active: this.activeCount(),
      version: o.version ?? '0',
      // The hub packs decisions only for a fleet whose every node says it reads them (ADR 0052).
      reads: READS,
    };
    const env = seal('heartbeat', body, o.name, o.privateKey, { encryptKey: o.encryptKey });
    // Best effort: a missed heartbeat only delays the hub's view of this node's lag. Over the
    // bus when it is up, else over HTTP (the hub takes heartbeats on POST /v1/reports too).
    const sent =
      o.transport && this.outbox.busIsUp
        ? o.transport.publish(topics.reports(o.fleet, o.name), env)
        : o.hub.report(env);
    sent.catch(() => {});
  }

  private every(ms: number, fn: () => unknown): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}

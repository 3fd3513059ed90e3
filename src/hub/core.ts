import type { KeyObject } from 'node:crypto';
import { parseTarget, tryParseTarget } from '../core/address.js';
import { Allowlist } from '../core/allowlist.js';
import { DEFAULT_SET, type Decision } from '../core/decision.js';
import type { DurationSeconds } from '../core/duration.js';
import { formatDuration } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import { parseHitsBody } from '../core/fleet-hits-check.js';
import type { Logger } from '../core/logger.js';
import { PACKED_DECISIONS, packDecisions } from '../core/packed-decisions.js';
import { assertSetName } from '../core/set-name.js';
import { type BatchView, batchView } from '../store/batch-view.js';
import { PairMap } from '../store/pair-map.js';
import type { DecisionInput, NodeRecord, Store } from '../store/types.js';
import {
  type DropReason,
  type EnvelopeKind,
  type OpenResult,
  openPeeked,
  type PeekedEnvelope,
  peek,
  ReplayCache,
  seal,
} from '../trust/envelope.js';
import { publicKeyFromText } from '../trust/keys.js';
import { FleetCounter, type FleetCrossing } from './fleet-counter.js';
import { resolveFleetPolicy } from './fleet-policy.js';
import { DropLog } from './intake/drop-log.js';
import type { HubMetrics } from './metrics.js';
import { PackedReaders } from './packed-readers.js';
import { outlasts, type Policy, type RefusalReason } from './policy.js';
import { PropagationTracker } from './propagation.js';
import { ProtectedAddresses } from './protected.js';

export interface HubCoreOptions {
  store: Store;
  policy: Policy;
  metrics: HubMetrics;
  keys: { privateKey: KeyObject; publicKey: KeyObject };
  fleet: string;
  log: Logger;
  /** Sends a sealed decision to the fleet; failures are counted, agents recover by catch-up. */
  publish: (bytes: Buffer) => Promise<void>;
  /** Envelope acceptance window (ms), default 60 s. */
  windowMs?: number;
  /** AES-256 key from `bus.encryptionKey`: report bodies must be encrypted, decisions are. */
  encryptionKey?: Buffer;
  now?: () => number;
  /**
   * Decisions appended within this many ms are published together (0, the default: those of the
   * same event-loop turn). One signature per envelope instead of per decision.
   */
  publishWindowMs?: number;
  /** Told of every bus message refused from `node` (the hub's throttle counts them). */
  onNodeRefused?: (node: string, reason: HubDropReason) => void;
}

/** One item of a bulk ban: the decision, a duplicate of one in force, or an error for that item. */
export type BulkOutcome =
  | { index: number; result: 'ban'; decision: Decision }
  | { index: number; result: 'duplicate'; decision: Decision }
  | { index: number; result: 'error'; error: string; code: string };

/** Most decisions in one `decisions` envelope, and most bytes of their JSON (the bus limit is 1 MiB). */
export const DECISIONS_PER_ENVELOPE = 500;
const ENVELOPE_BODY_BUDGET = 384 * 1024;
/** Refused decisions the hub keeps to send again (a few MB); agents catch up on the rest over HTTP. */
const MAX_UNPUBLISHED = 100_000;
/** The longest an operator's answer waits for this host's own kernel commit (see localEnforcement). */
const LOCAL_ENFORCEMENT_WAIT_MS = 1000;

interface PendingReport {
  node: string;
  body: unknown;
  /** Set for an operator's ban, which skips report policy. */
  manual?: ManualBan;
  resolve: (o: ReportOutcome) => void;
  reject: (err: unknown) => void;
}

type ManualBan = {
  target: string;
  duration?: DurationSeconds;
  reason?: string;
  set?: string;
  /** Ban a node's or this machine's address anyway (never the hub's or its broker's). */
  force?: boolean;
  /** Replace a ban in force even when it lasts longer (the default keeps the longer one). */
  replace?: boolean;
};

/** A bulk slice's items as checked, and the bans in force for them (`HubCore.sliceView`). */
interface SliceView {
  prepared: Array<DecisionInput | Error>;
  view: BatchView;
}

/** What an operator's ban did: a new decision, or the longer ban in force kept. */
export interface ManualOutcome {
  result: 'ban' | 'kept';
  decision: Decision;
}

/** What an unban did: lifted, kept (another reason's ban is in force), or nothing was banned. */
export type UnbanOutcome = { result: 'unban' | 'kept'; decision: Decision } | { result: 'absent' };

// Stands for a decision until the log assigns seqs (bulk outcomes are built before the append).
const PLACEHOLDER = {} as Decision;
/** Items of one bulk request checked, appended and published together (two full envelopes). */
export const BULK_SLICE = 2 * DECISIONS_PER_ENVELOPE;

/**
 * Answers the items from `from` to `end` as refused by the store. Every item has one outcome at
 * its own index, so the outcomes made for the slice that failed (from `from` on) are replaced.
 */
function refuseRest(outcomes: BulkOutcome[], from: number, end: number, err: unknown): void {
  outcomes.length = from;
  const error = `not applied: ${(err as Error).message}`;
  const code = err instanceof RampartError ? err.code : 'E_STORE';
  for (let index = from; index < end; index++) outcomes.push({ index, result: 'error', error, code });
}

/** The origin (and rate-limit bucket) of bans made by fleet-wide counting; a reserved node name. */
export const FLEET_ORIGIN = 'fleet';

/** Reports decided and appended in one transaction at most. */
const MAX_BATCH = 2000;

export interface ReportOutcome {
  result: 'ban' | 'extend' | 'duplicate' | 'refused' | 'kept';
  /** For a refusal: why, in words (`... is allowlisted (10.0.0.0/8)`, `... over its decision budget`). */
  reason?: string;
  /** For a refusal: `invalid`, `unbannable`, `allowlisted` or `rate-limited`. */
  refusal?: RefusalReason;
  decision?: Decision;
}

/**
 * The hub's logic without its sockets: report intake, the decision log, the allowlist, nodes.
 * The HTTP API and the bus subscription both call it. Writes go through one queue so that a
 * check-then-append (de-duplication, unban of an active ban) can never interleave with another,
 * and decisions are published in seq order.
 */
export class HubCore {
  readonly store: Store;
  readonly policy: Policy;
  readonly metrics: HubMetrics;
  readonly fleet: string;
  /** Addresses no ban may cover (hub/protected.ts). */
  readonly protectedAddrs = new ProtectedAddresses();
  /** Sums agents' below-threshold failures (undefined when `policy.fleet.enabled` is false). */
  readonly fleetCounter: FleetCounter | undefined;
  private readonly o: HubCoreOptions;
  private allow = new Allowlist();
  private readonly nodeKeys = new Map<string, KeyObject>();
  /** Which nodes read `decisions-packed` envelopes (their heartbeats). */
  private readonly packedReaders = new PackedReaders();
  private readonly misses = new Map<string, number>();
  /** Each node's clock minus ours, from its last verified envelope (in window or not). */
  private readonly skews = new Map<string, { ms: number; at: number; refused: boolean }>();
  private configAllowlist: string[] = [];
  private readonly replay = new ReplayCache();
  private readonly dropLog: DropLog;
  private readonly listeners = new Set<(d: Decision) => void>();
  private readonly propagation: PropagationTracker;
  private queue: Promise<unknown> = Promise.resolve();
  private pending: PendingReport[] = [];
  private flushScheduled = false;
  private outgoing: Decision[] = [];
  private publishScheduled = false;
  /** Batches the bus refused, in seq order, sent again by `republish()` (bounded by MAX_UNPUBLISHED). */
  private unpublished: Decision[][] = [];
  private unpublishedCount = 0;
  private republishing: Promise<void> | undefined;
  readonly now: () => number;
  /**
   * Set by `rampart up`, whose agent runs in this process: resolves once every decision appended
   * so far is in this host's kernel. An operator's ban or unban answers after it, so a `rampart
   * ban` that returned has taken effect here already (and the commit no longer waits behind the
   * HTTP answer's write). Bounded by LOCAL_ENFORCEMENT_WAIT_MS: a stuck firewall never holds it.
   */
  localEnforcement: (() => Promise<void>) | undefined;

  constructor(o: HubCoreOptions) {
    this.o = o;
    this.store = o.store;
    this.policy = o.policy;
    this.metrics = o.metrics;
    this.fleet = o.fleet;
    this.now = o.now ?? Date.now;
    this.propagation = new PropagationTracker(o.metrics.propagation);
    this.dropLog = new DropLog(o.log, this.now);
    const fleet = resolveFleetPolicy(o.policy.config.fleet);
    this.fleetCounter = fleet.enabled
      ? new FleetCounter({
          rules: new Map(Object.entries(fleet.rules)),
          perNode: fleet.perNode,
          minNodes: fleet.minNodes,
          maxEntries: fleet.maxEntries,
          onEvict: (n) => o.metrics.fleetEvictions.inc(n),
        })
      : undefined;
  }

  /**
   * Loads the allowlist (the stored one plus the config file's) and the enrolled nodes' keys into
   * memory (envelope checks are synchronous).
   */
  async init(configAllowlist: string[] = []): Promise<void> {
    this.configAllowlist = configAllowlist;
    await this.refreshShared();
  }

  /**
   * Reloads what other hubs on the same store may have changed: the allowlist, the node keys
   * (a node enrolled or removed through another hub) and what each node last said it reads. The
   * hub calls it on a timer.
   */
  async refreshShared(): Promise<void> {
    const allow = new Allowlist([
      ...this.configAllowlist,
      ...(await this.store.allowList()).map((e) => e.cidr),
    ]);
    const nodes = await this.store.listNodes();
    this.allow = allow;
    const fresh = new Set<string>();
    for (const n of nodes) {
      this.cacheKey(n);
      if (n.removedAt === null && n.publicKey) fresh.add(n.name);
      this.packedReaders.recorded(n.name, n.reads, n.lastSeen);
    }
    for (const name of this.nodeKeys.keys()) if (!fresh.has(name)) this.nodeKeys.delete(name);
  }

  /**
   * Before {@link openFromNode}: a sender not in the cache may have joined through another hub on
   * the same store; look it up once (misses are remembered for a few seconds, so a flood of
   * forged senders costs no flood of queries).
   */
  async ensureSender(bytes: Buffer | string): Promise<void> {
    let from: unknown;
    try {
      from = (JSON.parse(bytes.toString()) as { from?: unknown }).from;
    } catch {
      return;
    }
    if (typeof from === 'string' && this.needsLookup(from)) await this.lookUpSender(from);
  }

  /** True when `from` is neither a cached node nor a recent miss: its key must be looked up. */
  needsLookup(from: string): boolean {
    if (from.length > 64 || this.nodeKeys.has(from)) return false;
    const missed = this.misses.get(from);
    return missed === undefined || this.now() - missed >= 5_000;
  }

  /** Loads `from`'s key from the store (another hub may have enrolled it), remembering a miss. */
  async lookUpSender(from: string): Promise<void> {
    const n = await this.store.getNode(from);
    if (n) this.cacheKey(n);
    if (!this.nodeKeys.has(from)) {
      if (this.misses.size > 10_000) this.misses.clear();
      this.misses.set(from, this.now());
    }
  }

  get allowlist(): Allowlist {
    return this.allow;
  }

  /** Calls `fn` with every decision appended, in seq order (in-process agents, tests). */
  onDecision(fn: (d: Decision) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // --- envelopes -------------------------------------------------------------------------------

  /** Verifies an envelope from a node; refusals are counted by reason on the dropped metric. */
  openFromNode(bytes: Buffer | string | PeekedEnvelope, kinds: readonly EnvelopeKind[]): OpenResult {
    let peeked: PeekedEnvelope;
    if (typeof bytes === 'string' || Buffer.isBuffer(bytes)) {
      const p = peek(bytes);
      if (!p.ok) {
        this.drop(p.reason);
        return p;
      }
      peeked = p.env;
    } else {
      peeked = bytes;
    }
    const r = openPeeked(peeked, {
      keyFor: (from) => this.nodeKeys.get(from),
      replay: this.replay,
      windowMs: this.o.windowMs,
      expectKind: kinds,
      now: this.now,
      ...(this.o.encryptionKey ? { decryptKey: this.o.encryptionKey } : {}),
    });
    if (!r.ok) {
      this.drop(r.reason);
      if (r.skew && this.nodeKeys.has(r.skew.from)) {
        const known = this.skews.get(r.skew.from)?.refused;
        this.skews.set(r.skew.from, { ms: r.skew.ms, at: this.now(), refused: true });
        // Once per episode: a skewed node sends every heartbeat and report outside the window.
        if (!known)
          this.o.log.warn(
            { node: r.skew.from, skewMs: r.skew.ms, windowMs: this.o.windowMs },
            "refused a node's message: its clock is outside the time window",
          );
      }
    } else if (this.nodeKeys.has(r.env.from)) {
      this.skews.set(r.env.from, { ms: r.env.ts - this.now(), at: this.now(), refused: false });
    }
    return r;
  }

  /** The clock skew last measured for `node` (its time minus the hub's), if any message came. */
  clockSkew(node: string): { ms: number; at: number; refused: boolean } | undefined {
    return this.skews.get(node);
  }

  drop(reason: HubDropReason): void {
    this.metrics.dropped.inc({ reason });
  }

  /**
   * A message from the bus, `node` being the sender its topic names. What costs little comes
   * first (size, JSON, shape, kind, sender = topic, the sender's decision budget), so junk and a
   * node's excess never reach the signature verify; then the verify; then the work. The bus
   * intake (intake/bus-intake.ts) runs the same steps from its per-node queues.
   */
  async handleBusMessage(node: string, bytes: Buffer): Promise<void> {
    const peeked = this.precheck(node, bytes);
    if (peeked === undefined) return;
    if (this.needsLookup(peeked.from)) await this.lookUpSender(peeked.from);
    await this.admit(node, peeked);
  }

  /** The checks before any signature work; undefined when the message was dropped (counted). */
  precheck(node: string, bytes: Buffer): PeekedEnvelope | undefined {
    const p = peek(bytes);
    let reason: HubDropReason | undefined;
    if (!p.ok) reason = p.reason;
    else if (!NODE_KINDS.includes(p.env.kind)) reason = 'wrong-kind';
    // Checked before the verify: a message on one node's topic naming another is refused unread.
    else if (p.env.from !== node) reason = 'topic-mismatch';
    if (reason === undefined) return (p as { env: PeekedEnvelope }).env;
    this.dropFromBus(node, reason);
    return undefined;
  }

  /**
   * After {@link precheck} (and {@link lookUpSender} when {@link needsLookup}): a report from a node
   * with no decision budget left is dropped before the verify (it could only be refused, or be a
   * duplicate), then the signature, then the work. The budget is only ever charged by policy,
   * for verified reports, so a forger cannot spend a node's budget. Runs synchronously up to the
   * work, so the caller's time slice includes the verify.
   */
  admit(node: string, peeked: PeekedEnvelope): Promise<void> {
    if (peeked.kind === 'report' && !this.policy.hasBudget(node, this.now())) {
      this.dropFromBus(node, 'over-budget');
      return Promise.resolve();
    }
    const r = this.openFromNode(peeked, NODE_KINDS);
    if (!r.ok) {
      this.refusedFrom(node, r.reason);
      return Promise.resolve();
    }
    if (r.env.kind === 'heartbeat') return this.heartbeat(node, r.env.body);
    if (r.env.kind === 'hits') return this.hits(node, r.env.body).then(() => undefined);
    return this.report(node, r.env.body).then(() => undefined);
  }

  /** Counts a message dropped off the bus and logs it (at most once per node and reason a while). */
  dropFromBus(node: string, reason: HubDropReason): void {
    this.drop(reason);
    this.refusedFrom(node, reason);
  }

  /**
   * A message `node` sent (bus or HTTP) was refused, already counted by reason: told to the hub's
   * throttle, and logged (at most once per node and reason a while) unless `log` is false.
   */
  refusedFrom(node: string, reason: HubDropReason, log = true): void {
    if (log) this.dropLog.note(node, reason);
    this.o.onNodeRefused?.(node, reason);
  }

  /**
   * A verified `hits` envelope from `node`: failures its rules counted below their local
   * threshold. Each entry is added to the fleet counter; an address that crosses its rule's fleet
   * threshold becomes a report from {@link FLEET_ORIGIN} through the normal policy path
   * (protected addresses, allowlist, escalation, rate limit). A body that breaks the contract
   * (core/fleet-hits.ts) is dropped whole and counted as `invalid-body`.
   */
  async hits(
    node: string,
    body: unknown,
  ): Promise<{ counted: number; crossings: ReportOutcome[]; error?: string }> {
    const parsed = parseHitsBody(body);
    if (!parsed.ok) {
      this.drop('invalid-body');
      this.o.log.warn({ node, error: parsed.error }, 'dropped a hits envelope with an invalid body');
      return { counted: 0, crossings: [], error: parsed.error };
    }
    const counter = this.fleetCounter;
    if (counter === undefined) {
      this.metrics.fleetCounts.inc({ result: 'disabled' }, parsed.entries.length);
      return { counted: 0, crossings: [] };
    }
    const now = this.now();
    const crossed: FleetCrossing[] = [];
    let counted = 0;
    for (const e of parsed.entries) {
      if (!counter.counts(e.rule)) {
        this.metrics.fleetCounts.inc({ result: 'unknown-rule' });
        continue;
      }
      // Never bannable anyway: not worth a slot in the table.
      if (this.allow.match(e.parsed) !== undefined || this.protectedAddrs.why(e.parsed) !== undefined) {
        this.metrics.fleetCounts.inc({ result: 'allowlisted' });
        continue;
      }
      this.metrics.fleetCounts.inc({ result: 'counted' });
      counted++;
      const c = counter.add(node, e.rule, e.target, e.hits, now);
      if (c !== null) crossed.push(c);
    }
    this.metrics.fleetEntries.set(counter.size);
    const crossings = await Promise.all(crossed.map((c) => this.fleetBan(c, now)));
    return { counted, crossings };
  }

  private async fleetBan(c: FleetCrossing, now: number): Promise<ReportOutcome> {
    const t = c.threshold;
    const body: Record<string, unknown> = {
      target: c.target,
      rule: c.rule,
      reason: `${c.rule}: ${c.hits} hits from ${c.nodes} nodes within ${formatDuration(t.findtime)} (fleet-wide)`,
      hits: c.hits,
      at: now,
      set: t.set ?? DEFAULT_SET,
    };
    // Absent: the policy's default bantime, escalated like any report.
    if (t.bantime !== undefined) body.duration = t.bantime;
    const outcome = await this.report(FLEET_ORIGIN, body);
    this.metrics.fleetBans.inc({ result: outcome.refusal ?? outcome.result });
    this.o.log.info(
      {
        target: c.target,
        rule: c.rule,
        hits: c.hits,
        nodes: c.nodes,
        result: outcome.result,
        reason: outcome.reason,
      },
      'fleet-wide threshold crossed',
    );
    return outcome;
  }

  // --- reports and decisions -------------------------------------------------------------------

  /**
   * Applies policy to a verified report from `node`. Reports arriving together (a flood seen by
   * many nodes) are decided in one pass and appended in one transaction: group commit is what
   * lets the log keep up with thousands of decisions a second.
   */
  report(node: string, body: unknown): Promise<ReportOutcome> {
    return this.enqueue({ node, body });
  }

  /**
   * A report from the agent in this process (`rampart up`), taken without an envelope: nothing
   * crossed a wire, so there is no signature to check, only the same policy as for a verified
   * report and the same budget accounting as `POST /v1/reports`. Throws for a node that is not
   * (or no longer) enrolled; the agent then goes the checked way (HTTP) and hears why.
   */
  async reportInProcess(node: string, body: unknown): Promise<ReportOutcome> {
    if (this.needsLookup(node)) await this.lookUpSender(node);
    if (!this.nodeKeys.has(node)) throw new RampartError('E_AUTH', `node ${node} is not enrolled here`);
    const outcome = await this.report(node, body);
    if (outcome.refusal === 'rate-limited') this.refusedFrom(node, 'over-budget', false);
    return outcome;
  }

  private enqueue(item: Omit<PendingReport, 'resolve' | 'reject'>): Promise<ReportOutcome> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...item, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.serial(() => this.flushReports()).catch(() => undefined);
      });
    });
  }

  private async flushReports(): Promise<void> {
    const batch = this.pending.splice(0, MAX_BATCH);
    if (this.pending.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.serial(() => this.flushReports()).catch(() => undefined);
      });
    }
    if (batch.length === 0) return;
    const now = this.now();
    const inputs: DecisionInput[] = [];
    const offences: Array<{ target: string; at: number }> = [];
    // What this batch already decided, so the tenth report of one address in it is a duplicate.
    const inBatch = new Map<string, { index: number; view: Decision }>();
    const history = new Map<string, number>();
    const waiting: Array<{ item: PendingReport; index: number; result: ReportOutcome['result'] }> = [];
    // An operator's ban is checked once: its input gives the pair to read and then the decision.
    const manual = new Map<PendingReport, DecisionInput | Error>();
    for (const item of batch) if (item.manual) manual.set(item, this.tryManualInput(item.manual, now));
    let view: BatchView;
    try {
      view = await batchView(this.store, this.batchPairs(batch, manual), now);
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    for (const item of batch) {
      try {
        const prepared = manual.get(item);
        if (prepared instanceof Error) throw prepared;
        if (item.manual && prepared) {
          const input = prepared;
          const key = `${input.target}|${input.set}`;
          if (!item.manual.replace) {
            // One rule on every path: a ban never silently shortens a longer one in force.
            const inForce = inBatch.get(key);
            const existing = inForce ? inputs[inForce.index] : await view.activeFor(input.target, input.set);
            if (existing && !outlasts(input.expiresAt, existing.expiresAt, 0)) {
              if (inForce) waiting.push({ item, index: inForce.index, result: 'kept' });
              else item.resolve({ result: 'kept', decision: existing as Decision });
              continue;
            }
          }
          const index = inputs.push(input) - 1;
          inBatch.set(key, { index, view: { ...input, id: '', seq: 0 } });
          offences.push({ target: input.target, at: now });
          waiting.push({ item, index, result: 'ban' });
          continue;
        }
        const b = (typeof item.body === 'object' && item.body !== null ? item.body : {}) as Record<
          string,
          unknown
        >;
        const canonical = typeof b.target === 'string' ? tryCanonical(b.target) : undefined;
        const set = typeof b.set === 'string' ? b.set : DEFAULT_SET;
        const key = `${canonical}|${set}`;
        const pendingBan = canonical ? inBatch.get(key) : undefined;
        const active = pendingBan?.view ?? (canonical ? await view.activeFor(canonical, set) : undefined);
        const count = canonical ? (history.get(canonical) ?? (await view.banCount(canonical))) : 0;
        const parsed = canonical ? tryParseTarget(canonical) : null;
        const guarded = parsed ? this.protectedAddrs.why(parsed) : undefined;
        if (guarded) {
          // A node (perhaps compromised) asking to ban the hub or another node: never.
          this.metrics.reports.inc({ result: 'protected' });
          this.o.log.warn({ node: item.node, target: canonical, detail: guarded }, 'report refused');
          item.resolve({ result: 'refused', reason: guarded, refusal: 'protected' });
          continue;
        }
        const verdict = this.policy.evaluate(item.node, item.body, {
          now,
          allowlist: this.allow,
          active: () => active,
          previousBans: () => Math.max(0, count - (active ? 1 : 0)),
        });
        if (verdict.kind === 'refused') {
          this.metrics.reports.inc({ result: verdict.reason });
          this.o.log.warn(
            { node: item.node, target: canonical, reason: verdict.reason, detail: verdict.message },
            'report refused',
          );
          item.resolve({ result: 'refused', reason: verdict.message, refusal: verdict.reason });
        } else if (verdict.kind === 'duplicate') {
          this.metrics.reports.inc({ result: 'duplicate' });
          if (pendingBan) waiting.push({ item, index: pendingBan.index, result: 'duplicate' });
          else item.resolve({ result: 'duplicate', decision: verdict.existing });
        } else {
          const index = inputs.push(verdict.input) - 1;
          inBatch.set(`${verdict.input.target}|${verdict.input.set}`, {
            index,
            view: { ...verdict.input, id: '', seq: 0 },
          });
          if (!verdict.extends) {
            offences.push({ target: verdict.input.target, at: now });
            history.set(verdict.input.target, count + 1);
          }
          const result = verdict.extends ? 'extend' : 'ban';
          this.metrics.reports.inc({ result });
          waiting.push({ item, index, result });
        }
      } catch (err) {
        item.reject(err);
      }
    }
    let out: Decision[];
    try {
      out = await this.appendAndPublish(inputs, offences);
    } catch (err) {
      for (const w of waiting) w.item.reject(err);
      return;
    }
    for (const w of waiting) w.item.resolve({ result: w.result, decision: out[w.index] });
  }

  async heartbeat(node: string, body: unknown): Promise<void> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const lastSeq = typeof b.lastSeq === 'number' && Number.isSafeInteger(b.lastSeq) ? b.lastSeq : undefined;
    const version = typeof b.version === 'string' ? b.version.slice(0, 64) : undefined;
    if (lastSeq !== undefined) this.propagation.report(node, lastSeq, this.now());
    const reads = this.packedReaders.heartbeat(node, b.reads, this.now());
    await this.store.touchNode(node, { lastSeen: this.now(), lastSeq, version, reads });
  }

  /** An operator's ban (API/CLI). Throws E_UNBANNABLE/E_ADDRESS for refused targets. */
  async ban(req: ManualBan): Promise<Decision> {
    return (await this.banOutcome(req)).decision;
  }

  /** `ban`, saying whether a new decision was made or a longer ban in force was kept. */
  async banOutcome(req: ManualBan): Promise<ManualOutcome> {
    // Validated now so a bad target is an immediate error; batched with concurrent reports after.
    this.manualInput(req, this.now());
    const out = await this.enqueue({ node: 'operator', body: undefined, manual: req });
    if (out.result !== 'kept') await this.enforcedHere();
    return { result: out.result === 'kept' ? 'kept' : 'ban', decision: out.decision! };
  }

  /** Waits for {@link localEnforcement}, when set, at most LOCAL_ENFORCEMENT_WAIT_MS. */
  private async enforcedHere(): Promise<void> {
    const applied = this.localEnforcement?.();
    if (!applied) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => {
      timer = setTimeout(r, LOCAL_ENFORCEMENT_WAIT_MS);
    });
    await Promise.race([applied.catch(() => {}), late]);
    clearTimeout(timer);
  }

  /**
   * Many operator bans at once: every item goes through the same checks as `ban` (allowlist,
   * unbannable, set name), a bad item is reported by its index without stopping the others, an
   * item that would not lengthen a ban in force (or repeats an earlier item) is a duplicate, and
   * the rest are appended with consecutive seqs, BULK_SLICE items per transaction.
   *
   * Why slices (ADR 0070): appended whole, a 10,000-item request kept every agent idle until its
   * one transaction ended, then handed them 20 envelopes at once, and its temporaries outlived
   * the young generation. A slice is published as soon as it is appended, and the event loop
   * turns between slices (other requests and reports are served; they wait for the ordering
   * lock as before). A slice the store refuses, and every item after it, is answered as an error
   * with the store's code; the slices before it stay applied and published, and sending the
   * request again makes them duplicates. A request whose first slice fails throws as before.
   */
  banMany(items: readonly ManualBan[]): Promise<BulkOutcome[]> {
    return this.serial(async () => {
      const now = this.now();
      const outcomes: BulkOutcome[] = [];
      // Decisions appended so far, by input number (an item's place among the appended items).
      const decided: Decision[] = [];
      // Outcomes waiting for the decision of the input numbered `input`.
      const slots: Array<{ outcome: number; input: number }> = [];
      const seen = new PairMap<{ input: number } | { existing: Decision }>();
      // The next slice's checks and store read, made while this slice is appended (ADR 0080).
      let next: Promise<SliceView> = this.sliceView(items, 0, now);
      for (let from = 0; from < items.length; from += BULK_SLICE) {
        const to = Math.min(items.length, from + BULK_SLICE);
        const inputs: DecisionInput[] = [];
        const offences: Array<{ target: string; at: number }> = [];
        const { prepared, view } = await next;
        for (let index = from; index < to; index++) {
          const input = prepared[index - from]!;
          if (input instanceof Error) {
            const code = input instanceof RampartError ? input.code : 'E_USAGE';
            outcomes.push({ index, result: 'error', error: input.message, code });
            continue;
          }
          const earlier = seen.get(input.target, input.set);
          if (earlier && 'input' in earlier) {
            slots.push({ outcome: outcomes.length, input: earlier.input });
            outcomes.push({ index, result: 'duplicate', decision: PLACEHOLDER });
            continue;
          }
          const known = earlier?.existing ?? view.known(input.target, input.set);
          const existing = known === undefined ? await view.activeFor(input.target, input.set) : known;
          // The report path's rule: re-importing a list is not a new decision per address.
          const slack = Math.max(60_000, ((input.duration ?? 0) * 1000) / 4);
          if (existing && !items[index]!.replace && !outlasts(input.expiresAt, existing.expiresAt, slack)) {
            seen.set(input.target, input.set, { existing });
            outcomes.push({ index, result: 'duplicate', decision: existing });
            continue;
          }
          const at = decided.length + inputs.push(input) - 1;
          seen.set(input.target, input.set, { input: at });
          offences.push({ target: input.target, at: now });
          slots.push({ outcome: outcomes.length, input: at });
          outcomes.push({ index, result: 'ban', decision: PLACEHOLDER });
        }
        const appending = inputs.length > 0 ? this.appendAndPublish(inputs, offences) : undefined;
        if (to < items.length) next = this.sliceViewSoon(items, to, now);
        if (appending) {
          try {
            for (const d of await appending) decided.push(d);
          } catch (err) {
            if (decided.length === 0) throw err;
            this.o.log.warn(
              { err: (err as Error).message, from, count: items.length - from },
              'bulk slice not appended',
            );
            refuseRest(outcomes, from, items.length, err);
            break;
          }
        }
        // The slice's envelopes are on the bus; let the loop turn before the next slice.
        if (to < items.length) await new Promise((r) => setImmediate(r));
      }
      for (const { outcome, input } of slots) {
        const o = outcomes[outcome]!;
        // A slot of a slice the store refused now holds that item's error.
        if (o.result !== 'error') o.decision = decided[input]!;
      }
      return outcomes;
    });
  }

  /**
   * The slice of a bulk request from `from`: each item checked (an Error for a refused one), and
   * the bans in force for the pairs that passed, read at once. An operator's ban does not depend
   * on how often the target was banned before, so no counts are read (ADR 0076).
   */
  private async sliceView(items: readonly ManualBan[], from: number, now: number): Promise<SliceView> {
    const to = Math.min(items.length, from + BULK_SLICE);
    const prepared: Array<DecisionInput | Error> = [];
    for (let index = from; index < to; index++) prepared.push(this.tryManualInput(items[index]!, now));
    const view = await batchView(this.store, pairsOf(prepared), now, { history: false });
    return { prepared, view };
  }

  /**
   * {@link sliceView} once the loop has turned, so the append just started reaches the store
   * before the next slice's checks take the thread. The slice before it only touches its own pairs,
   * and a pair of both slices is answered from `seen`, so reading ahead of its commit is safe.
   * Marked handled: a request whose append failed never awaits it, and one that awaits it does so
   * only after the loop has turned.
   */
  private sliceViewSoon(items: readonly ManualBan[], from: number, now: number): Promise<SliceView> {
    const view = new Promise((r) => setImmediate(r)).then(() => this.sliceView(items, from, now));
    view.catch(() => undefined);
    return view;
  }

  /** The (target, set) pairs a batch of reports will read, to read them at once (refused items left out). */
  private batchPairs(
    batch: readonly PendingReport[],
    manual: ReadonlyMap<PendingReport, DecisionInput | Error>,
  ): Array<{ target: string; set: string }> {
    const pairs = pairsOf(manual.values());
    for (const item of batch) {
      if (item.manual) continue;
      const b = item.body as { target?: unknown; set?: unknown } | null | undefined;
      const canonical = typeof b?.target === 'string' ? tryCanonical(b.target) : undefined;
      if (canonical) pairs.push({ target: canonical, set: typeof b?.set === 'string' ? b.set : DEFAULT_SET });
    }
    return pairs;
  }

  /** {@link manualInput}, with its refusal returned instead of thrown. */
  private tryManualInput(req: ManualBan, now: number): DecisionInput | Error {
    try {
      return this.manualInput(req, now);
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** Policy's checks for an operator's ban, then the protected addresses. */
  private manualInput(req: ManualBan, now: number): DecisionInput {
    // Parsed once for both checks (each item of a bulk import comes this way).
    const target = parseTarget(req.target);
    const input = this.policy.manual(req, this.allow, now, target);
    this.protectedAddrs.assertAllowed(target, req.force === true);
    return input;
  }

  /** Unbans a target in force; undefined when it was not banned. */
  async unban(
    target: string,
    opts: { set?: string; reason?: string; origin?: string } = {},
  ): Promise<Decision | undefined> {
    const out = await this.unbanOutcome(target, opts);
    return out.result === 'unban' ? out.decision : undefined;
  }

  /**
   * Unbans a target in force and says what happened. With `ifReason`, only a ban whose reason is
   * exactly that is lifted; another ban in force is kept. A tool that made a short ban (fail2ban's
   * action at its own bantime's end) must not lift a longer ban that replaced it or was made by
   * someone else.
   */
  async unbanOutcome(
    target: string,
    opts: { set?: string; reason?: string; origin?: string; ifReason?: string } = {},
  ): Promise<UnbanOutcome> {
    const out = await this.unbanInOrder(target, opts);
    if (out.result === 'unban') await this.enforcedHere();
    return out;
  }

  private unbanInOrder(
    target: string,
    opts: { set?: string; reason?: string; origin?: string; ifReason?: string },
  ): Promise<UnbanOutcome> {
    return this.serial(async () => {
      const t = parseTarget(target);
      const set = assertSetName(opts.set ?? DEFAULT_SET);
      const now = this.now();
      const active = await this.store.activeFor(t.text, set, now);
      if (!active) return { result: 'absent' as const };
      if (opts.ifReason !== undefined && active.reason !== opts.ifReason) {
        return { result: 'kept' as const, decision: active };
      }
      const [d] = await this.appendAndPublish([
        unbanInput(t.text, t.family, set, opts.reason ?? 'manual unban', opts.origin ?? 'operator', now),
      ]);
      return { result: 'unban' as const, decision: d as Decision };
    });
  }

  decisionsSince(
    since: number,
    limit: number,
  ): Promise<{ head: number; snapshot?: true; decisions: Decision[] }> {
    return this.serial(async () => {
      const head = await this.store.head();
      const oldest = await this.store.oldestRetained();
      if (since + 1 < oldest) {
        return { head, snapshot: true as const, decisions: await this.store.active(this.now()) };
      }
      return { head, decisions: await this.store.since(since, limit) };
    });
  }

  async active(): Promise<{ head: number; decisions: Decision[] }> {
    return { head: await this.store.head(), decisions: await this.store.active(this.now()) };
  }

  // --- allowlist -------------------------------------------------------------------------------

  /** Adds a range to the fleet allowlist and unbans every active ban it covers. */
  allowAdd(cidr: string, comment = ''): Promise<{ cidr: string; unbanned: Decision[] }> {
    return this.serial(async () => {
      const t = parseTarget(cidr);
      const now = this.now();
      await this.store.allowAdd({ cidr: t.text, comment: comment.slice(0, 256), createdAt: now });
      this.allow.add(t);
      const covered = (await this.store.active(now)).filter((d) => {
        const bt = parseTarget(d.target);
        return bt.family === t.family && bt.first <= t.last && t.first <= bt.last;
      });
      const unbanned = await this.appendAndPublish(
        covered.map((d) => unbanInput(d.target, d.family, d.set, `allowlisted (${t.text})`, 'operator', now)),
      );
      return { cidr: t.text, unbanned };
    });
  }

  allowRemove(cidr: string): Promise<boolean> {
    return this.serial(async () => {
      const t = parseTarget(cidr);
      const had = await this.store.allowRemove(t.text);
      if (had) this.allow.remove(t);
      return had;
    });
  }

  // --- nodes -----------------------------------------------------------------------------------

  async addNode(name: string, joinSecretHash: string): Promise<NodeRecord> {
    return this.store.addNode(name, joinSecretHash, this.now());
  }

  async removeNode(name: string): Promise<boolean> {
    const ok = await this.store.removeNode(name, this.now());
    this.nodeKeys.delete(name);
    this.packedReaders.forget(name);
    this.policy.forgetNode(name);
    this.protectedAddrs.forgetNode(name);
    this.propagation.forget(name);
    return ok;
  }

  async enrol(name: string, joinSecretHash: string, publicKey: string, tokenHash: string): Promise<boolean> {
    const ok = await this.store.enrolNode(name, joinSecretHash, publicKey, tokenHash);
    if (ok) {
      this.nodeKeys.set(name, publicKeyFromText(publicKey));
      this.packedReaders.forget(name);
    }
    return ok;
  }

  // --- housekeeping ----------------------------------------------------------------------------

  /** Drops expired bans from the active set (no message: agents expire them too) and old log entries. */
  sweep(retentionMs: number): Promise<number> {
    return this.serial(() => {
      const now = this.now();
      if (this.fleetCounter !== undefined) {
        this.fleetCounter.sweep(now);
        this.metrics.fleetEntries.set(this.fleetCounter.size);
      }
      return this.store.prune(now - retentionMs, now);
    });
  }

  /** Waits for queued writes to finish. */
  async drain(): Promise<void> {
    do {
      // A flush may be scheduled (setImmediate) but not queued yet: let it queue, then wait.
      await new Promise((r) => setImmediate(r));
      await this.serial(async () => undefined);
      if (this.outgoing.length > 0) this.publishOutgoing();
    } while (this.pending.length > 0 || this.flushScheduled);
  }

  private async appendAndPublish(
    inputs: DecisionInput[],
    offences: Array<{ target: string; at: number }> = [],
  ): Promise<Decision[]> {
    const out = await this.store.append(inputs, offences);
    // The counter takes each run of the same labels at once: labels are hashed per call, and a
    // bulk slice is a thousand decisions with one action and one origin.
    let run = 0;
    for (let i = 0; i < out.length; i++) {
      const d = out[i]!;
      run++;
      const next = out[i + 1];
      if (next === undefined || next.action !== d.action || next.origin !== d.origin) {
        this.metrics.decisions.inc({ action: d.action, origin: d.origin }, run);
        run = 0;
      }
    }
    for (const d of out) {
      this.propagation.record(d.seq, d.createdAt);
      this.outgoing.push(d);
      for (const fn of this.listeners) {
        try {
          fn(d);
        } catch (err) {
          this.o.log.error({ err }, 'a decision listener threw');
        }
      }
    }
    // A full envelope gains nothing from waiting: published now, in the append's continuation.
    // Behind setImmediate it waited for whatever else this turn of the event loop held (the next
    // bulk request's body being parsed), and with several hubs another hub's later append could
    // reach the bus first: a hole in every agent's stream (ADR 0061). Everything pending goes with
    // it, so this hub's decisions stay in seq order on the bus.
    const windowMs = this.o.publishWindowMs ?? 0;
    if (this.outgoing.length >= DECISIONS_PER_ENVELOPE && windowMs === 0) {
      this.publishOutgoing();
      return out;
    }
    if (this.outgoing.length > 0 && !this.publishScheduled) {
      this.publishScheduled = true;
      if (windowMs > 0) setTimeout(() => this.publishOutgoing(), windowMs);
      else setImmediate(() => this.publishOutgoing());
    }
    return out;
  }

  /**
   * Seals what was appended since the last call into as few envelopes as fit: `decisions` (an
   * array, in seq order) for several, `decision` for a lone one. Publishing happens in seq order
   * because appends are serialised and this takes everything pending at once.
   */
  private publishOutgoing(): void {
    this.publishScheduled = false;
    const all = this.outgoing;
    this.outgoing = [];
    let chunk: Decision[] = [];
    let bytes = 0;
    const send = () => {
      if (chunk.length === 0) return;
      const batch = chunk;
      chunk = [];
      bytes = 0;
      // A synchronous throw (sealing, a transport's own check) is kept for republish like a
      // refusal: the decisions are in the log already, and this may run inside the append's caller.
      try {
        this.o.publish(this.sealBatch(batch)).catch((err: unknown) => this.publishFailed(batch, err));
      } catch (err) {
        this.publishFailed(batch, err);
      }
    };
    for (const d of all) {
      const size =
        200 +
        d.id.length +
        d.target.length +
        d.set.length +
        wireSize(d.reason) +
        wireSize(d.rule) +
        wireSize(d.origin);
      if (chunk.length >= DECISIONS_PER_ENVELOPE || bytes + size > ENVELOPE_BODY_BUDGET) send();
      chunk.push(d);
      bytes += size;
    }
    send();
  }

  /**
   * Sends again what the bus refused (a broker restarting, a cluster node failing over), oldest
   * first, sealed anew so the envelope is fresh. Agents drop seqs they already have, so a batch
   * the broker did store before its ack was lost costs nothing. The hub calls it when the bus
   * comes back up and on a timer; stops at the first failure.
   */
  republish(): Promise<void> {
    this.republishing ??= (async () => {
      try {
        while (this.unpublished.length > 0) {
          const batch = this.unpublished[0]!;
          await this.o.publish(this.sealBatch(batch));
          this.unpublished.shift();
          this.unpublishedCount -= batch.length;
          this.metrics.republished.inc(batch.length);
        }
      } catch (err) {
        this.o.log.debug({ err: (err as Error).message }, 'republishing decisions failed; will retry');
      } finally {
        this.republishing = undefined;
      }
    })();
    return this.republishing;
  }

  /** Decisions the bus refused that are waiting for `republish()`. */
  get unpublishedDecisions(): number {
    return this.unpublishedCount;
  }

  /**
   * `decision` for one, `decisions-packed` for a run when every node reads it (ADR 0052), else
   * `decisions`. Decided at each seal, so a batch sent again follows the fleet as it is now.
   */
  private sealBatch(batch: Decision[]): Buffer {
    const opts = { encryptKey: this.o.encryptionKey };
    const packed =
      batch.length > 1 && this.packedReaders.all(this.nodeKeys, this.now())
        ? packDecisions(batch)
        : undefined;
    if (batch.length > 1 && !packed && this.packedReaders.wantsStoreRead(this.now()))
      this.readRecordedReads();
    const kind = batch.length === 1 ? 'decision' : packed ? PACKED_DECISIONS : 'decisions';
    this.metrics.sealed.inc({ kind });
    return seal(kind, packed ?? (batch.length === 1 ? batch[0] : batch), 'hub', this.o.keys.privateKey, opts);
  }

  /**
   * A run went unpacked because this hub has not heard some node lately: with several hubs on one
   * store, that node's heartbeats may have reached another hub, which recorded them (ADR 0063).
   * Read what the store says now rather than at the next shared refresh (every 10 s): a bulk
   * import into a freshly started fleet otherwise goes unpacked from this hub for up to that long
   * (ADR 0074). How often: {@link PackedReaders.wantsStoreRead}; the read runs beside the import.
   */
  private readRecordedReads(): void {
    void this.store
      .listNodes()
      .then((nodes) => {
        for (const n of nodes) this.packedReaders.recorded(n.name, n.reads, n.lastSeen);
      })
      .catch((err: unknown) =>
        this.o.log.debug({ err: (err as Error).message }, 'reading recorded heartbeats failed'),
      );
  }

  private publishFailed(batch: Decision[], err: unknown): void {
    this.metrics.publishFailures.inc();
    // Beyond the bound the agents' HTTP catch-up (at every gap and reconcile) is the way back.
    const kept = this.unpublishedCount + batch.length <= MAX_UNPUBLISHED;
    if (kept) {
      // Failures of batches published concurrently may arrive out of order.
      const at = this.unpublished.findIndex((b) => b[0]!.seq > batch[0]!.seq);
      if (at < 0) this.unpublished.push(batch);
      else this.unpublished.splice(at, 0, batch);
      this.unpublishedCount += batch.length;
    }
    this.o.log.warn(
      { seq: batch[0]!.seq, count: batch.length, err: (err as Error).message, kept },
      kept
        ? 'publishing decisions failed; will send them again'
        : 'publishing decisions failed; agents will catch up',
    );
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private cacheKey(n: NodeRecord): void {
    if (n.removedAt !== null || !n.publicKey) return;
    try {
      this.nodeKeys.set(n.name, publicKeyFromText(n.publicKey));
    } catch (err) {
      this.o.log.error(
        { node: n.name, err: (err as Error).message },
        'stored public key is invalid; node ignored',
      );
    }
  }
}

/**
 * Why the hub dropped a message: the envelope's reasons, plus `topic-mismatch` (sender is not the
 * node its topic names), `invalid-body`, `over-budget` (a report from a node with no decision
 * budget left, dropped before its verify) and `queue-full` (the node's intake queue was full).
 */
/** The (target, set) pairs of the inputs that were not refused. */
function pairsOf(inputs: Iterable<DecisionInput | Error>): Array<{ target: string; set: string }> {
  const pairs: Array<{ target: string; set: string }> = [];
  for (const i of inputs) if (!(i instanceof Error)) pairs.push({ target: i.target, set: i.set });
  return pairs;
}

export type HubDropReason = DropReason | 'topic-mismatch' | 'invalid-body' | 'over-budget' | 'queue-full';

/** Envelope kinds a node may send (bus and POST /v1/reports). */
export const NODE_KINDS: readonly EnvelopeKind[] = ['report', 'heartbeat', 'hits'];

const PLAIN_RE = /^[\x20-\x7e]*$/;

/** Bytes a string takes in the wire envelope, where the body's JSON is itself a JSON string. */
function wireSize(text: string): number {
  // Printable ASCII: at worst a `"` becomes four characters; a bound without stringifying.
  return PLAIN_RE.test(text) ? text.length * 4 : Buffer.byteLength(JSON.stringify(JSON.stringify(text)));
}

function tryCanonical(text: string): string | undefined {
  try {
    return parseTarget(text).text;
  } catch {
    return undefined;
  }
}

function unbanInput(
  target: string,
  family: 4 | 6,
  set: string,
  reason: string,
  origin: string,
  now: number,
): DecisionInput {
  return {
    action: 'unban',
    target,
    family,
    duration: null,
    expiresAt: null,
    reason,
    rule: 'manual',
    origin,
    createdAt: now,
    set,
  };
}

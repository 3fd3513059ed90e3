import { type Target, tryParseTarget } from '../core/address.js';
import type { Allowlist } from '../core/allowlist.js';
import { type Decision, remainingSeconds } from '../core/decision.js';
import type { DurationSeconds } from '../core/duration.js';
import type { Logger } from '../core/logger.js';
import { isSetName } from '../core/set-name.js';
import { type DesiredStream, REBUILD_ABOVE, sync } from '../firewall/reconcile.js';
import type { Firewall, FirewallEntry } from '../firewall/types.js';
import type { Committer } from './committer.js';
import type { DecisionPage } from './hub-api.js';
import { type ActiveBan, type AgentState, FIRST_PAGE } from './state.js';

/**
 * Staged changes beyond which intake waits for the kernel: two commit slices (20,000 each). A
 * staged ban holds a parsed target (two bigints) until its commit; a bulk load arriving faster
 * than the kernel takes it held hundreds of thousands of them.
 */
const STAGED_HIGH = 40_000;

/**
 * A hole in the live stream waits this long for the bus to fill it before catch-up reads the log:
 * long enough for another hub's batch published a moment later, short against a lost message.
 */
export const GAP_GRACE_MS = 150;

/**
 * A hole whose grace ran out while the bus was still delivering waits on, in further graces, up to
 * this long in all. An agent working through a backlog (a flood from two hubs on a busy machine)
 * reads the missing envelope only after those ahead of it in its socket and the broker's queue;
 * the grace is wall time, so it ran out while the envelope was already on its way, and every such
 * agent read the same run again over HTTP: a second copy of the work at the worst moment, which
 * made it fall further behind (ADR 0061). A hole the bus will never fill (a hub killed between its
 * commit and its publish) is still read from the log, this much later at most.
 */
export const GAP_WAIT_MAX_MS = 1_000;

export interface ApplierOptions {
  state: AgentState;
  firewall: Firewall;
  committer: Committer;
  /** The agent's own allowlist: never banned here, whoever signed the ban. */
  allowlist: Allowlist;
  /**
   * The hub(s) and broker this agent talks to: a ban covering one would cut it off from the
   * fleet (and from the unban), so it is never enforced here, whoever signed it.
   */
  protected?: Allowlist;
  log: Logger;
  /** Fetches the hub's log after `since` (HubApi.decisions). */
  fetchSince: (since: number) => Promise<DecisionPage>;
  now?: () => number;
  /** Called after each decision is staged (metrics, benchmarks). */
  onApplied?: (d: Decision) => void;
  /** Live decisions held while waiting for a gap to fill; beyond this only catch-up is trusted. */
  maxBuffered?: number;
  /**
   * How long a hole may stay open before it is fetched over HTTP (default {@link GAP_GRACE_MS}).
   * Several hubs publish their own appends, so the bus may carry seq 2,001 before 1: the missing
   * run is usually a few milliseconds behind, and fetching it made every agent read the log.
   */
  gapGraceMs?: number;
  retryMs?: number;
}

export interface ApplierStats {
  applied: number;
  duplicates: number;
  gaps: number;
  catchUps: number;
  snapshots: number;
  allowlisted: number;
  expired: number;
  invalid: number;
  /** Decisions whose set name no backend accepts (core/set-name.ts): dropped, never retried. */
  badSet: number;
  /** Bans that would cover the hub or the broker: never enforced. */
  protected: number;
}

/**
 * Applies the hub's ordered decision log to the firewall and the local state, exactly once and in
 * `seq` order. Live decisions that arrive ahead of a gap are buffered while a catch-up fetches the
 * missing ones over HTTP; a cursor the hub no longer retains gets a snapshot that replaces the
 * state. Everything goes through `state` so a restart resumes from `lastSeq`.
 */
export class DecisionApplier {
  readonly stats: ApplierStats = {
    applied: 0,
    duplicates: 0,
    gaps: 0,
    catchUps: 0,
    snapshots: 0,
    allowlisted: 0,
    expired: 0,
    invalid: 0,
    badSet: 0,
    protected: 0,
  };
  /** The highest log seq this agent has heard of (live decisions, catch-up heads): lag = this - lastSeq. */
  headSeen = 0;
  /**
   * The highest seq whose effect a successful firewall commit has taken to the kernel (decisions
   * refused here count as taken): `lastSeq - kernelSeq` is what is staged and not enforced yet.
   */
  kernelSeq = 0;
  private readonly buffer = new Map<number, Decision>();
  /** The highest seq ever held in `buffer` (at or below lastSeq once drained). */
  private heldTop = 0;
  private catching: Promise<void> | null = null;
  private catchAgain = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private kernelTimer: NodeJS.Timeout | null = null;
  /** Pending while a hole waits for the bus ({@link GAP_GRACE_MS}). */
  private gapTimer: NodeJS.Timeout | null = null;
  /** When the last live decision arrived (`now()`), and when the open hole opened. */
  private lastLiveAt = Number.NEGATIVE_INFINITY;
  private holeOpenedAt = 0;
  private stopped = false;
  private readonly now: () => number;
  /** Inside `liveRun`: decisions applied in order leave their commit to the end of the run. */
  private inRun = false;
  private runApplied = false;

  constructor(private readonly o: ApplierOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Re-applies the durable copy to the firewall: the first thing the agent does, before the network. */
  async restore(): Promise<number> {
    const fw = this.o.firewall;
    // A big durable copy goes the way a big reconcile does: read from the state in pages and
    // compared with the kernel, or refilled in bounded transactions, never staged as a million
    // objects (issue 10: agent memory with 1M bans; ADR 0043). A start never waits for a whole
    // read of a big kernel set: a set too big to read quickly is refilled instead.
    const count = this.desiredCount();
    if ((fw.repair || fw.rebuild) && count > REBUILD_ABOVE) {
      await sync(fw, this.desiredStream(), { refill: true });
      return count;
    }
    let n = 0;
    const poisoned: Array<{ target: string; set: string }> = [];
    for (const ban of this.o.state.eachActive(this.now())) {
      if (this.stage(ban.target, ban.set, ban.expiresAt)) n++;
      // A poisoned entry stored by an older version: forget it rather than re-stage it forever.
      else if (!isSetName(ban.set)) poisoned.push({ target: ban.target, set: ban.set });
    }
    // After the cursor closed: the state takes no write while it reads.
    for (const p of poisoned) this.o.state.applyHub(this.o.state.lastSeq(), { unban: p });
    await this.commit();
    return n;
  }

  /**
   * `live` for each decision of a list (one envelope's, in seq order, inside the caller's state
   * batch), with one commit scheduled for all it applied rather than one per decision: a commit
   * request and its promise callback per decision were a tenth of an agent's bulk intake (ADR
   * 0057). Scheduled inside the batch, as `live` does, so it covers the batch's last seq.
   */
  liveRun(list: readonly Decision[]): void {
    // One clock read for the run's expiry checks and timeouts (a run is applied within
    // milliseconds): a read per decision was two heap numbers of garbage each (ADR 0068).
    const now = this.now();
    this.lastLiveAt = now;
    this.inRun = true;
    try {
      for (let i = 0; i < list.length; i++) this.live(list[i]!, now);
    } finally {
      this.inRun = false;
      // Also when a decision threw: what was staged before it is committed, as `live` would have.
      if (this.runApplied) {
        this.runApplied = false;
        void this.commit();
      }
    }
  }

  /** A decision from the bus (signature already verified); `now` as `liveRun` read it. */
  live(d: Decision, now?: number): void {
    if (!this.inRun) this.lastLiveAt = this.now();
    if (d.seq > this.headSeen) this.headSeen = d.seq;
    const last = this.o.state.lastSeq();
    if (d.seq <= last) {
      this.stats.duplicates++;
      return;
    }
    // The kernel is behind (a bulk load): what arrives now is read from the hub's log once it
    // caught up, instead of piling up as staged changes (ADR 0043).
    if (this.o.firewall.pending() >= STAGED_HIGH) {
      void this.catchUp();
      return;
    }
    if (d.seq === last + 1 && !this.catching) {
      this.applyOne(d, now);
      this.drainBuffer();
      if (this.inRun) this.runApplied = true;
      else void this.commit();
      return;
    }
    // A gap (or a catch-up in flight): hold it, and fetch what is missing.
    const held = this.buffer.size < (this.o.maxBuffered ?? 10_000);
    const follows = held && d.seq === Math.max(last, this.heldTop) + 1;
    if (held) {
      this.buffer.set(d.seq, d);
      if (d.seq > this.heldTop) this.heldTop = d.seq;
    }
    // During a catch-up, a decision that directly follows what is held opens no new hole: the run
    // in flight drains it once it reaches the held ones. Asking for another pass here made every
    // envelope of a flood cost an HTTP page as well (the hub served the log twice).
    if (this.catching && follows) return;
    if (this.catching) {
      void this.catchUp();
      return;
    }
    // A new hole: give the bus a moment to deliver what is missing (another hub's batch).
    if (this.gapTimer) return;
    this.stats.gaps++;
    const grace = this.o.gapGraceMs ?? GAP_GRACE_MS;
    if (grace <= 0 || !held) {
      void this.catchUp();
      return;
    }
    this.holeOpenedAt = this.now();
    this.waitForHole(grace);
  }

  /**
   * After `grace`, a hole still open is read from the log, unless the bus delivered something
   * meanwhile (it is still flowing; on a busy machine an agent may not have run for tens of
   * milliseconds, so "meanwhile" is the whole grace) and the hole has been open less than
   * {@link GAP_WAIT_MAX_MS}: then it waits another grace.
   */
  private waitForHole(grace: number): void {
    const armedAt = this.now();
    this.gapTimer = setTimeout(() => {
      this.gapTimer = null;
      if (this.stopped || this.buffer.size === 0) return;
      if (this.lastLiveAt > armedAt && this.now() - this.holeOpenedAt < GAP_WAIT_MAX_MS)
        return this.waitForHole(grace);
      void this.catchUp();
    }, grace);
    this.gapTimer.unref();
  }

  /**
   * Fetches everything after `lastSeq` until the hub's head. Concurrent calls share one run (and
   * trigger one more pass after it); failures retry on a timer, since the bus may be up while the
   * API is not.
   */
  catchUp(): Promise<void> {
    if (this.catching) {
      this.catchAgain = true;
      return this.catching;
    }
    this.catching = (async () => {
      do {
        this.catchAgain = false;
        await this.catchUpOnce();
      } while (this.catchAgain && !this.stopped);
    })()
      .then(
        () => {
          this.catching = null;
          this.o.state.batch(() => this.drainBuffer());
          // Still a hole after a full catch-up: the hub has not served it yet; look again later.
          if (this.buffer.size > 0) this.retryLater();
        },
        (err) => {
          this.catching = null;
          this.o.state.batch(() => this.drainBuffer());
          this.o.log.warn({ err: (err as Error).message }, 'catch-up failed; retrying');
          this.retryLater();
        },
      )
      .finally(() => void this.commit());
    return this.catching;
  }

  /** A ban found by this agent's own detection: enforced at once, before the hub answers. */
  local(target: Target, duration: DurationSeconds, set: string, origin: string): boolean {
    const expiresAt = duration === null ? null : this.now() + duration * 1000;
    if (!this.stage(target.text, set, expiresAt, target)) return false;
    this.o.state.addLocal({ target: target.text, set, expiresAt, origin });
    void this.commit();
    return true;
  }

  /** Lifts a ban this agent made itself and the hub never confirmed (a good pattern forgave it). */
  forgiveLocal(target: Target, set: string): boolean {
    const ban = this.o.state.get(target.text, set);
    if (!ban || ban.seq > 0) return false;
    this.o.firewall.delete(target, set);
    this.o.state.applyHub(this.o.state.lastSeq(), { unban: { target: target.text, set } });
    void this.commit();
    return true;
  }

  /**
   * What the kernel should hold right now (for reconcile), parsed, one ban at a time from the
   * state's cursor (see AgentState.eachActive: consume without awaiting).
   */
  *desired(): Generator<{ target: Target; set: string; expiresAt: number | null }> {
    for (const b of this.o.state.eachActive(this.now())) {
      if (!isSetName(b.set)) continue;
      const t = tryParseTarget(b.target);
      if (!t || this.o.allowlist.has(t) || this.o.protected?.has(t) === true) continue;
      yield { target: t, set: b.set, expiresAt: b.expiresAt };
    }
  }

  /** `desired()` as firewall entries with their seconds left (same cursor rules). */
  *desiredEntries(): Generator<FirewallEntry> {
    const now = this.now();
    for (const b of this.desired()) {
      const timeout = b.expiresAt === null ? null : Math.max(1, Math.ceil((b.expiresAt - now) / 1000));
      yield { target: b.target, set: b.set, timeout };
    }
  }

  /**
   * `desiredEntries()` in pages read from the state one at a time: whoever reads them may await
   * between pages (a reconcile commits its repairs there).
   */
  async *desiredPages(size: number): AsyncGenerator<FirewallEntry[]> {
    for (let after = FIRST_PAGE; ; ) {
      const now = this.now();
      const { bans, next } = this.o.state.activePage(after, now, size);
      if (bans.length === 0) return;
      after = next;
      const page: FirewallEntry[] = [];
      for (const b of bans) {
        if (!isSetName(b.set)) continue;
        const t = tryParseTarget(b.target);
        if (!t || this.o.allowlist.has(t) || this.o.protected?.has(t) === true) continue;
        const timeout = b.expiresAt === null ? null : Math.max(1, Math.ceil((b.expiresAt - now) / 1000));
        page.push({ target: t, set: b.set, timeout });
      }
      yield page;
    }
  }

  /** The active bans as a stream for reconcile: counted, walked, or read in pages. */
  desiredStream(): DesiredStream {
    return {
      count: this.desiredCount(),
      entries: () => this.desiredEntries(),
      pages: (size) => this.desiredPages(size),
    };
  }

  /** How many bans `desired()` will go through (an upper bound: it skips allowlisted ones). */
  desiredCount(): number {
    return this.o.state.activeCount(this.now());
  }

  /**
   * Asks the committer for a commit of what is staged; resolves once it is in the kernel (or the
   * commit failed). Everything applied so far is staged before the commit it waits for starts, so
   * once that commit succeeds the kernel holds every decision up to today's `lastSeq`.
   */
  commit(): Promise<void> {
    const { committer, state } = this.o;
    const seq = state.lastSeq();
    const failures = committer.failures;
    const done = committer.schedule();
    if (seq > this.kernelSeq) {
      done.then(
        () => {
          // A failed commit keeps its batch staged and the committer retries it on its own timer;
          // look again then, so the gauge does not wait for the next decision to catch up.
          if (committer.failures !== failures) this.recheckKernelLater();
          else if (seq > this.kernelSeq) {
            this.kernelSeq = seq;
            this.o.log.debug({ seq }, 'decisions in the kernel');
          }
        },
        () => {},
      );
    }
    return done;
  }

  private recheckKernelLater(): void {
    this.later('kernelTimer', () => void this.commit());
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.kernelTimer) clearTimeout(this.kernelTimer);
    if (this.gapTimer) clearTimeout(this.gapTimer);
    this.retryTimer = null;
    this.kernelTimer = null;
    this.gapTimer = null;
  }

  private async catchUpOnce(): Promise<void> {
    this.stats.catchUps++;
    for (;;) {
      const since = this.o.state.lastSeq();
      const page = await this.o.fetchSince(since);
      if (page.head > this.headSeen) this.headSeen = page.head;
      if (page.snapshot) {
        this.applySnapshot(page);
        return;
      }
      let progressed = false;
      // One transaction per page (up to 10,000 decisions), not one per decision.
      this.o.state.batch(() => {
        for (const d of page.decisions) {
          const last = this.o.state.lastSeq();
          if (d.seq <= last) continue;
          if (d.seq !== last + 1) {
            // The log has no gaps by contract; if a page skips, trust the hub and say so.
            this.o.log.warn({ expected: last + 1, got: d.seq }, 'hub log skipped sequence numbers');
          }
          this.applyOne(d);
          progressed = true;
        }
        this.drainBuffer();
      });
      // The next page waits while the kernel is behind: staged changes stay bounded.
      if (this.o.firewall.pending() >= STAGED_HIGH) await this.commit();
      else void this.commit();
      if (!progressed || this.o.state.lastSeq() >= page.head) return;
    }
  }

  private applySnapshot(page: DecisionPage): void {
    this.stats.snapshots++;
    const now = this.now();
    const keep = new Map<string, ActiveBan>();
    for (const d of page.decisions) {
      if (d.action !== 'ban' || (d.expiresAt !== null && d.expiresAt <= now)) continue;
      keep.set(`${d.set}\u0000${d.target}`, {
        target: d.target,
        set: d.set,
        expiresAt: d.expiresAt,
        seq: d.seq,
        origin: d.origin,
      });
    }
    for (const old of this.o.state.active(now)) {
      if (old.seq > 0 && !keep.has(`${old.set}\u0000${old.target}`)) {
        const t = tryParseTarget(old.target);
        if (t) this.o.firewall.delete(t, old.set);
      }
    }
    for (const b of keep.values()) this.stage(b.target, b.set, b.expiresAt);
    this.o.state.replaceWithSnapshot([...keep.values()], page.head);
    for (const seq of [...this.buffer.keys()]) if (seq <= page.head) this.buffer.delete(seq);
    this.o.log.info({ head: page.head, active: keep.size }, 'applied snapshot from hub');
  }

  private drainBuffer(): void {
    // Called after every in-order live decision: nothing to copy or scan when nothing is held.
    if (this.buffer.size === 0) return;
    let last = this.o.state.lastSeq();
    // Deleting the current key while iterating a Map is safe; no copy of up to 10,000 keys.
    for (const seq of this.buffer.keys()) if (seq <= last) this.buffer.delete(seq);
    for (let next = this.buffer.get(last + 1); next; next = this.buffer.get(last + 1)) {
      this.buffer.delete(next.seq);
      this.applyOne(next);
      last = next.seq;
    }
    // The bus filled the hole: nothing to fetch.
    if (this.buffer.size === 0 && this.gapTimer) {
      clearTimeout(this.gapTimer);
      this.gapTimer = null;
    }
  }

  private applyOne(d: Decision, now = this.now()): void {
    const target = tryParseTarget(d.target);
    const state = this.o.state;
    if (!target || (d.action !== 'ban' && d.action !== 'unban')) {
      this.stats.invalid++;
      this.o.log.warn(
        { seq: d.seq, target: String(d.target).slice(0, 80) },
        'decision with an invalid target skipped',
      );
      state.applyHub(d.seq, null);
      return;
    }
    const set = d.set || 'blocklist';
    if (!isSetName(set)) {
      // The kernel would refuse the whole batch, and every later decision would wait behind it.
      this.refuseSet(d.seq, set, target.text);
      state.applyHub(d.seq, null);
      return;
    }
    if (d.action === 'unban') {
      if (state.get(target.text, set)) this.o.firewall.delete(target, set);
      state.applyHub(d.seq, { unban: { target: target.text, set } });
    } else if (d.expiresAt !== null && d.expiresAt <= now) {
      this.stats.expired++;
      state.applyHub(d.seq, null);
    } else if (this.stage(target.text, set, d.expiresAt, target, now)) {
      state.applyHubBan(d.seq, target.text, set, d.expiresAt, d.origin);
    } else {
      state.applyHub(d.seq, null);
    }
    this.stats.applied++;
    this.o.onApplied?.(d);
  }

  /** Stages a ban unless the own allowlist covers it; false when refused. */
  private stage(
    text: string,
    set: string,
    expiresAt: number | null,
    parsed?: Target,
    now = this.now(),
  ): boolean {
    const target = parsed ?? tryParseTarget(text);
    if (!target) return false;
    if (!isSetName(set)) {
      this.refuseSet(undefined, set, target.text);
      return false;
    }
    const hub = this.o.protected?.match(target);
    if (hub !== undefined) {
      this.stats.protected++;
      this.o.log.error(
        { target: target.text, covers: hub },
        "ban refused: it covers this agent's hub or broker and would cut it off from the fleet",
      );
      return false;
    }
    const hit = this.o.allowlist.match(target);
    if (hit !== undefined) {
      this.stats.allowlisted++;
      this.o.log.warn(
        { target: target.text, allowlist: hit },
        "ban refused: address is on this agent's allowlist",
      );
      return false;
    }
    const timeout = remainingSeconds(expiresAt, now);
    if (timeout === 0) return false;
    this.o.firewall.add(target, timeout, set);
    return true;
  }

  private refuseSet(seq: number | undefined, set: string, target: string): void {
    this.stats.badSet++;
    this.o.log.error(
      { seq, set: set.slice(0, 64), target },
      'decision dropped: its set name is not one a firewall backend accepts',
    );
  }

  private retryLater(): void {
    this.later('retryTimer', () => void this.catchUp());
  }

  /** Runs `fn` after `retryMs` unless stopped; one pending timer per purpose. */
  private later(timer: 'retryTimer' | 'kernelTimer', fn: () => void): void {
    if (this.stopped || this[timer]) return;
    const t = setTimeout(() => {
      this[timer] = null;
      fn();
    }, this.o.retryMs ?? 2000);
    t.unref();
    this[timer] = t;
  }
}

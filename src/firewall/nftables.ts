import { isSingleHost, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { type DriverChoice, openDriver, type RunOptions, type ToolDriver } from './driver.js';
import { overlaps, type Tracked, topLevel } from './interval-tops.js';
import { readAnswer, selfConsistent } from './netlink-message.js';
import { type ElementChange, encodeElementBatch, NETLINK_MAX_ELEMENTS, NFPROTO } from './nft-netlink.js';
import { RepairBatch } from './nft-repair-batch.js';
import { SetIndex, timeLeftMatches } from './nft-set-index.js';
import {
  carriesElements,
  ELEMENTS_PER_STATEMENT,
  elementLines,
  elementText,
  firstElement,
  NFT_NAME,
  parseListedSet,
  parseNftError,
  type ScriptLine,
} from './nft-text.js';
import type { ToolRunner } from './run-tool.js';
import { DEFAULT_SET, lastWins, remaining, type StagedOp, Staging } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry, KernelScan, Refusal, RepairCounts } from './types.js';

/** Kernel set names behind one logical set. In set-only mode these are the operator's sets. */
export interface KernelSetNames {
  v4?: string;
  v6?: string;
  /** Ranges; when absent in set-only mode, ranges go to `v4`/`v6` (which must be interval sets). */
  v4net?: string;
  v6net?: string;
}

export interface NftablesOptions extends ToolRunner {
  /** The nft binary. */
  nft?: string;
  /** Table family; rampart's own table is always `inet`, set-only mode may name `ip`/`ip6`/... */
  family?: string;
  table?: string;
  /** Base chains rampart hooks (own-table mode). */
  hooks?: Array<'input' | 'forward'>;
  priority?: number;
  verdict?: 'drop' | 'reject';
  /** Manage only the elements of sets the operator created; never create or delete anything. */
  setOnly?: boolean;
  /** Logical set → kernel set names; own-table mode derives `NAME_v4`, `NAME_v4_net`, ... */
  sets?: Record<string, KernelSetNames>;
  /** libnftables in-process (`library`), the nft program (`spawn`), or the library when it loads. */
  driver?: DriverChoice;
  /**
   * Small commits to plain sets as netlink messages built here, with the in-process driver
   * (default true; false sends every commit through libnftables' script path, for comparison).
   */
  netlinkElements?: boolean;
  logger?: Logger;
}

type Kind = 'v4' | 'v6' | 'v4net' | 'v6net';

interface KernelSet {
  logical: string;
  name: string;
  family: 4 | 6;
  interval: boolean;
  /**
   * Interval sets only: every range rampart applied, nested ones included (by canonical text),
   * which is what lets a nested ban avoid nft's overlap error.
   */
  applied: Map<string, Tracked>;
}

/** Elements whose end lies this far in the past are taken as expired by the kernel too. */
const EXPIRY_GRACE_MS = 2000;

/** Elements handled between two turns of the event loop while a big script is written. */
const YIELD_EVERY = 20_000;

/**
 * Changes per transaction, for commits and for a reconcile's repairs: what `firewall add
 * --from-file` commits at a time (ADR 0035); about 8 MB of libnftables memory for IPv6.
 */
export const COMMIT_SLICE = 20_000;

/** Bytes a batch of NETLINK_MAX_ELEMENTS plain-set changes takes at most (nft-netlink.ts sizes it). */
const NETLINK_SCRATCH = 256 * 1024;

/** Ranges wanted in a set up to which its listing runs on the calling thread (about 1 ms). */
const SMALL_RANGE_SET = 1_000;

/** Messages (of ≈ 600 elements) a scan reads of a set before it calls the set big. */
const PROBE_ROUNDS = 8;

/** A whole read of a big set is followed by at least this many times its duration without one. */
const FULL_READ_SPACING = 10;

/** What `scan` learned: the plain sets it read whole, by kernel name. */
interface NftScan extends KernelScan {
  sets: Map<string, SetIndex>;
  /** Plain sets not read whole this time: too big, or changed by someone else while read. */
  unread: Set<string>;
}

/** Failures about what a batch holds (not about nft, permissions or the kernel module). */
const aboutContent = new WeakSet<Error>();

/**
 * nftables backend. Own-table mode keeps `table inet rampart` with, per logical set and family, a
 * plain `flags timeout` set for addresses and a `flags interval, timeout` set for ranges, plus one
 * base chain per hook that drops (or rejects) their sources. Every commit is one `nft -f -`
 * transaction, so a batch applies completely or not at all.
 */
export class NftablesFirewall implements Firewall {
  readonly name = 'nftables';
  private readonly staging = new Staging();
  private readonly sets = new Map<string, KernelSet>();
  /** logical set → kind → kernel set, so a million-element batch resolves names once. */
  private readonly lookup = new Map<string, Partial<Record<Kind, KernelSet>>>();
  private readonly opts: Required<
    Omit<NftablesOptions, 'sets' | 'logger' | 'driver' | 'netlinkElements' | keyof ToolRunner>
  > &
    ToolRunner;
  private readonly choice: DriverChoice;
  private tools: Promise<ToolDriver> | undefined;
  /** The driver once open (the netlink path needs it without waiting). */
  private opened: ToolDriver | undefined;
  private readonly netlinkElements: boolean;
  private netlinkSeq = 1;
  /** Reused by big netlink batches (allocated at the first one). */
  private netlinkScratch = Buffer.alloc(0);
  /** Commits that went as netlink batches, and those that fell back to the script path. */
  readonly netlinkCommits = { sent: 0, fellBack: 0 };
  /** How commits reach the kernel, known once the first one opened the driver. */
  driver: 'library' | 'spawn' | undefined;
  refusedTotal = 0;
  private readonly names: Record<string, KernelSetNames>;
  private readonly log: Logger;
  /** Own-table mode: the table, sets and chains must be (re)declared before the next batch. */
  private declared = false;
  /**
   * The nf_tables generation after our latest transaction, while every transaction since the
   * last check was ours; `verified`: the kernel held what we wanted at the start of that chain.
   */
  private gen: number | undefined;
  private verified = false;
  /** Set when `commitSmallNow` sent a batch the kernel did not take: `viaNetlink` lets it be once. */
  private skipNetlinkOnce = false;
  /** A whole read of a big set costs time in its size squared: not again before this (ms). */
  private nextFullRead = 0;
  /**
   * Plain sets a repair refilled (every desired element added again, unread) with only our own
   * transactions since: nothing can be missing from them until someone else commits, so a pass
   * before their next whole read adds nothing again. Without it, every pass between a flush and
   * the next read slot re-added the whole set (a million elements, each pass).
   */
  private readonly refilledIntact = new Set<string>();

  constructor(opts: NftablesOptions = {}) {
    this.opts = {
      nft: opts.nft ?? 'nft',
      family: opts.family ?? 'inet',
      table: opts.table ?? 'rampart',
      hooks: opts.hooks ?? ['input'],
      priority: opts.priority ?? -10,
      verdict: opts.verdict ?? 'drop',
      setOnly: opts.setOnly ?? false,
      prefix: opts.prefix,
      timeoutMs: opts.timeoutMs,
    };
    this.names = opts.sets ?? { [DEFAULT_SET]: {} };
    this.netlinkElements = opts.netlinkElements ?? true;
    // A program path of the operator's own (a wrapper) is a request to run that program.
    this.choice = opts.driver ?? (opts.nft && opts.nft !== 'nft' ? 'spawn' : 'auto');
    this.log = opts.logger ?? silentLogger();
    if (!this.opts.setOnly && this.opts.family !== 'inet') {
      throw new RampartError(
        'E_CONFIG',
        `nftables: rampart's own table must be family inet, not ${this.opts.family}`,
      );
    }
    for (const n of [this.opts.table, this.opts.family, ...Object.keys(this.names)]) {
      if (!NFT_NAME.test(n)) throw new RampartError('E_CONFIG', `nftables: "${n}" is not a valid nft name`);
    }
    if (this.opts.setOnly && Object.keys(this.names).length === 0) {
      throw new RampartError(
        'E_CONFIG',
        'nftables: set-only mode needs at least one set in firewall.nftables.sets',
      );
    }
  }

  private get where(): string {
    return `${this.opts.family} ${this.opts.table}`;
  }

  private kernelName(logical: string, kind: Kind): string | undefined {
    const given = this.names[logical]?.[kind];
    if (given) return given;
    if (this.opts.setOnly) {
      if (kind === 'v4net') return this.names[logical]?.v4;
      if (kind === 'v6net') return this.names[logical]?.v6;
      return undefined;
    }
    return {
      v4: `${logical}_v4`,
      v6: `${logical}_v6`,
      v4net: `${logical}_v4_net`,
      v6net: `${logical}_v6_net`,
    }[kind];
  }

  private kindOf(t: Target): Kind {
    const net = !isSingleHost(t);
    return t.family === 4 ? (net ? 'v4net' : 'v4') : net ? 'v6net' : 'v6';
  }

  /** The kernel set for a target, declaring a new logical set on first use in own-table mode. */
  private setFor(logical: string, t: Target): KernelSet {
    const kind = this.kindOf(t);
    let byKind = this.lookup.get(logical);
    if (!byKind) {
      byKind = {};
      this.lookup.set(logical, byKind);
    }
    const hit = byKind[kind];
    if (hit) return hit;
    const ks = this.resolveSet(logical, t, kind);
    byKind[kind] = ks;
    return ks;
  }

  private resolveSet(logical: string, t: Target, kind: Kind): KernelSet {
    const name = this.kernelName(logical, kind);
    if (!name || (this.opts.setOnly && !this.names[logical])) {
      throw new RampartError(
        'E_FIREWALL',
        `nftables: no ${kind.startsWith('v4') ? 'IPv4' : 'IPv6'} set configured for set "${logical}" in set-only mode (element ${t.text})`,
      );
    }
    let ks = this.sets.get(name);
    if (!ks) {
      if (!NFT_NAME.test(logical))
        throw new RampartError('E_FIREWALL', `nftables: "${logical}" is not a valid set name`);
      if (!this.names[logical]) {
        this.names[logical] = {};
        this.declared = false;
      }
      ks = { logical, name, family: t.family, interval: kind.endsWith('net'), applied: new Map() };
      this.sets.set(name, ks);
    }
    return ks;
  }

  private ownSets(): Array<{ logical: string; name: string; family: 4 | 6; interval: boolean }> {
    const out = [];
    for (const logical of Object.keys(this.names)) {
      for (const kind of ['v4', 'v4net', 'v6', 'v6net'] as Kind[]) {
        out.push({
          logical,
          name: this.kernelName(logical, kind)!,
          family: kind.startsWith('v4') ? 4 : 6,
          interval: kind.endsWith('net'),
        } as const);
      }
    }
    return out;
  }

  /** Table, sets, chains and rules, idempotently: existing elements are kept. */
  private declaration(): ScriptLine[] {
    const lines: ScriptLine[] = [{ text: `add table ${this.where}` }];
    const sets = this.ownSets();
    for (const s of sets) {
      const type = s.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
      const flags = s.interval ? 'interval, timeout' : 'timeout';
      lines.push({ text: `add set ${this.where} ${s.name} { type ${type}; flags ${flags}; }`, set: s.name });
    }
    const verdict = this.opts.verdict === 'reject' ? 'reject' : 'drop';
    for (const hook of this.opts.hooks) {
      lines.push({
        text: `add chain ${this.where} ${hook} { type filter hook ${hook} priority ${this.opts.priority}; policy accept; }`,
      });
      lines.push({ text: `flush chain ${this.where} ${hook}` });
      for (const s of sets) {
        lines.push({
          text: `add rule ${this.where} ${hook} ${s.family === 4 ? 'ip' : 'ip6'} saddr @${s.name} counter ${verdict}`,
        });
      }
    }
    return lines;
  }

  async init(): Promise<void> {
    if (this.opts.setOnly) {
      for (const [logical, names] of Object.entries(this.names)) {
        for (const kind of ['v4', 'v6', 'v4net', 'v6net'] as Kind[]) {
          const name = names[kind];
          if (name && !this.sets.has(name)) await this.adoptSet(logical, name, kind);
        }
      }
      return;
    }
    // libnftables waits for the kernel's answer in select(), which a signal interrupts whatever
    // SA_RESTART says (SIGCHLD from a spawned conntrack, a profiler's SIGPROF): the declaration is
    // idempotent, so it is sent again rather than ending the agent's start.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.apply(this.declaration(), 'init');
        break;
      } catch (err) {
        if (attempt >= 3 || !/Interrupted system call/.test((err as Error).message)) throw err;
        this.log.warn(
          { backend: this.name, attempt },
          'nftables: declaration interrupted by a signal; sending it again',
        );
      }
    }
    this.declared = true;
    for (const s of this.ownSets()) {
      const ks = this.sets.get(s.name) ?? { ...s, applied: new Map<string, Tracked>() };
      this.sets.set(s.name, ks);
      // Ranges are few; knowing them is what lets nested bans avoid nft's overlap error.
      if (s.interval) await this.load(ks);
    }
  }

  /** Set-only mode: check the operator's set exists and learn whether it takes ranges. */
  private async adoptSet(logical: string, name: string, kind: Kind): Promise<void> {
    if (!NFT_NAME.test(name))
      throw new RampartError('E_CONFIG', `nftables: "${name}" is not a valid nft set name`);
    const r = await this.nft(['-t', '-j', 'list', 'set', this.opts.family, this.opts.table, name], '');
    if (r.code !== 0) {
      throw new RampartError(
        'E_FIREWALL',
        `nftables: set-only mode: set ${this.where} ${name} (for "${logical}") is missing or unreadable: ${firstLine(r.stderr)}; create it in your ruleset or fix firewall.nftables.sets`,
      );
    }
    const flags =
      (JSON.parse(r.stdout) as { nftables: Array<{ set?: { flags?: string[] } }> }).nftables.find(
        (x) => x.set,
      )?.set?.flags ?? [];
    const ks: KernelSet = {
      logical,
      name,
      family: kind.startsWith('v4') ? 4 : 6,
      interval: flags.includes('interval'),
      applied: new Map(),
    };
    this.sets.set(name, ks);
    if (ks.interval) await this.load(ks);
  }

  /** At start only (init, set-only adoption): ranges are few, so the listing runs inline. */
  private async load(ks: KernelSet): Promise<void> {
    const now = Date.now();
    for (const e of await this.listSet(ks, { small: true })) {
      ks.applied.set(e.target.text, {
        target: e.target,
        expiresAt: e.timeout === null ? null : now + e.timeout * 1000,
      });
    }
  }

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.staging.add(target, timeout, set);
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.staging.delete(target, set);
  }

  pending(): number {
    return this.staging.size;
  }

  /**
   * Commits what is staged now, in transactions of at most COMMIT_SLICE changes: libnftables holds
   * every element of a transaction until it commits (about 400 bytes each) in this process, so a
   * bulk load of a million bans is fifty bounded transactions, not one (ADR 0043). A failing slice
   * stays staged with everything after it; the slices before it are applied.
   */
  async commit(): Promise<CommitResult> {
    const total: CommitResult = { added: 0, deleted: 0 };
    if (this.staging.size === 0) return total;
    const now = this.commitSmallNow();
    if (now) return now;
    const refused: Refusal[] = [];
    // A spawned nft holds the transaction in its own process: one run, one transaction, as before.
    const slice = (await this.open()).kind === 'library' ? COMMIT_SLICE : Number.POSITIVE_INFINITY;
    // Changes staged while this runs wait for the next commit, as before.
    for (let budget = this.staging.size; budget > 0 && this.staging.size > 0; ) {
      const r = await this.commitSlice(slice, refused);
      budget -= r.taken;
      total.added += r.added;
      total.deleted += r.deleted;
    }
    return refused.length > 0 ? { ...total, refused } : total;
  }

  private async commitSlice(max: number, refused: Refusal[]) {
    const ops = this.staging.take(max);
    try {
      const before = refused.length;
      const batch = this.known(lastWins(ops), refused);
      const result = await this.applyAll(batch, ops, refused);
      this.staging.settle();
      for (const r of refused.slice(before)) {
        this.refusedTotal++;
        this.log.error(
          { backend: this.name, set: r.set, element: r.target.text, op: r.op, reason: r.reason },
          'firewall refused an element; set aside, the rest of the batch is applied',
        );
      }
      return { ...result, taken: ops.length };
    } catch (err) {
      this.staging.restore(ops);
      throw err;
    }
  }

  /**
   * The ops whose set resolves; a set name no kernel set can have is refused here, before it
   * reaches a script. A loop of its own, apart from the async `commitSlice` (ADR 0057).
   */
  private known(ops: StagedOp[], refused: Refusal[]): StagedOp[] {
    // `ops` itself while every set resolves (a bulk commit: no copy of 20,000); a copy from the
    // first refusal on.
    let batch: StagedOp[] | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      try {
        this.setFor(op.set, op.target);
        batch?.push(op);
      } catch (err) {
        batch ??= ops.slice(0, i);
        refused.push(refusal(op, (err as Error).message));
      }
    }
    return batch ?? ops;
  }

  /**
   * Applies a batch in one transaction; when the kernel refuses it because of what it holds, the
   * batch is halved until the elements it refuses stand alone (cheap in-process), and those are
   * set aside while every other part applies. Any other failure (permissions, nft missing) is
   * thrown and the whole batch stays staged.
   */
  private async applyAll(batch: StagedOp[], ops: StagedOp[], refused: Refusal[]): Promise<CommitResult> {
    const total = { added: 0, deleted: 0 };
    const part = async (list: StagedOp[]): Promise<void> => {
      if (list.length === 0) return;
      try {
        const r = await this.applyOps(list, ops);
        total.added += r.added;
        total.deleted += r.deleted;
      } catch (err) {
        if (!(err instanceof Error) || !aboutContent.has(err)) throw err;
        if (list.length === 1) {
          refused.push(refusal(list[0]!, err.message));
          return;
        }
        const half = list.length >> 1;
        await part(list.slice(0, half));
        await part(list.slice(half));
      }
    };
    await part(batch);
    return total;
  }

  private async applyOps(all: StagedOp[], ops: StagedOp[]): Promise<CommitResult> {
    const quick = await this.viaNetlink(all);
    if (quick && quick.rest.length === 0) return quick.done;
    // What the netlink batches did not take (none, or the part from a refused batch on).
    const batch = quick ? quick.rest : all;
    const done = quick ? quick.done : { added: 0, deleted: 0 };
    let plan = await this.plan(batch, Date.now());
    try {
      await this.apply(
        [...(this.declared || this.opts.setOnly ? [] : this.declaration()), ...plan.lines],
        'commit',
        ops,
      );
    } catch (err) {
      // A table deleted behind our back (a firewall reload): declare it again and retry once.
      if (
        this.opts.setOnly ||
        !(err instanceof RampartError) ||
        !/No such file or directory/.test(err.message)
      )
        throw err;
      this.log.warn({ table: this.where }, 'nftables table or set vanished; re-creating it');
      for (const ks of this.sets.values()) this.forget(ks);
      plan = await this.plan(batch, Date.now());
      await this.apply([...this.declaration(), ...plan.lines], 'commit', ops);
    }
    this.declared = true;
    for (const update of plan.after) update();
    return { added: done.added + plan.result.added, deleted: done.deleted + plan.result.deleted };
  }

  /**
   * What is staged, when it is one netlink transaction of plain-set changes (a single ban, a few),
   * sent in this call: the slices, halving and script path below are five async functions deep,
   * each a promise and a microtask, for a send that is synchronous (ADR 0066). Undefined, with
   * everything still staged, when the batch is not such a one; when the kernel did not take it,
   * the same batch goes down the ordinary path without a second netlink try.
   */
  private commitSmallNow(): CommitResult | undefined {
    // A flag left by a commit that threw before its script path ran lasts no longer than that one.
    this.skipNetlinkOnce = false;
    const driver = this.opened;
    if (driver?.kind !== 'library' || !this.netlinkElements || !this.declared || !driver.netlink)
      return undefined;
    if (this.staging.size > NETLINK_MAX_ELEMENTS) return undefined;
    const ops = this.staging.take();
    const batch = lastWins(ops);
    // Resolving a set not seen before marks the table for declaration: checked after it.
    if (!this.allKnownPlain(batch) || !this.declared) {
      this.staging.restore(ops);
      return undefined;
    }
    const changes = this.elementChanges(batch, 0, batch.length);
    if (!this.sendNetlink(driver, changes)) {
      this.staging.restore(ops);
      this.skipNetlinkOnce = true;
      return undefined;
    }
    this.staging.settle();
    const done = { added: 0, deleted: 0 };
    countDone(batch, changes, 0, done);
    return done;
  }

  /** `allPlain`, and every set name resolves (one that does not is refused by the ordinary path). */
  private allKnownPlain(batch: StagedOp[]): boolean {
    try {
      return this.allPlain(batch);
    } catch {
      return false;
    }
  }

  /**
   * A batch of plain-set changes as netlink transactions (nft-netlink.ts) of at most
   * NETLINK_MAX_ELEMENTS each, when the table is known declared and the in-process driver can send
   * them now; undefined sends the whole batch down the script path. A batch of one transaction is
   * sent within this turn (a single ban, a burst); a bigger one yields to the event loop between
   * its transactions, so a commit of 20,000 stalls the loop no longer than one of 2,000 (ADR
   * 0048: libnftables' text parser was most of an agent's kernel share on the bulk path). A
   * transaction the kernel refuses applied nothing: it and the ones after it are `rest`, for the
   * script path, which also reports any error the kernel gave here.
   */
  private async viaNetlink(batch: StagedOp[]): Promise<{ done: CommitResult; rest: StagedOp[] } | undefined> {
    const driver = this.opened;
    // The same batch was just refused as one transaction by `commitSmallNow`: the script path.
    if (this.skipNetlinkOnce) {
      this.skipNetlinkOnce = false;
      return undefined;
    }
    if (!this.netlinkElements || !this.declared || !driver?.netlink) return undefined;
    if (batch.length === 0 || !this.allPlain(batch)) return undefined;
    const done = { added: 0, deleted: 0 };
    for (let from = 0; from < batch.length; from += NETLINK_MAX_ELEMENTS) {
      if (from > 0) {
        await new Promise<void>((r) => setImmediate(r));
        // The table may have been dropped meanwhile by our own destroy(): the script path knows.
        if (!this.declared || this.opened !== driver) return { done, rest: batch.slice(from) };
      }
      // Each transaction's changes are made just before it is sent: a bulk commit's 20,000 would
      // otherwise outlive several young-generation collections while the first go (ADR 0057).
      const part = this.elementChanges(batch, from, Math.min(batch.length, from + NETLINK_MAX_ELEMENTS));
      if (!this.sendNetlink(driver, part)) return { done, rest: batch.slice(from) };
      countDone(batch, part, from, done);
    }
    return { done, rest: [] };
  }

  /**
   * Whether every op of the batch goes to a plain set and can be encoded from its address's
   * number. The per-op loops are apart from `viaNetlink` (like `countDone`): V8 optimises a hot
   * loop with the function around it, and compiling an async function whole cost more than the
   * loop ever ran (ADR 0057).
   */
  private allPlain(batch: StagedOp[]): boolean {
    for (let i = 0; i < batch.length; i++) {
      const op = batch[i]!;
      // The key is encoded from the address's number, the script from its text: an element whose
      // two disagree (never one parseTarget made) goes the script path, which refuses it by name.
      if (this.setFor(op.set, op.target).interval || !selfConsistent(op.target)) return false;
    }
    return true;
  }

  /** `batch[from, to)` as element changes of their plain sets (`allPlain` said they all are). */
  private elementChanges(batch: StagedOp[], from: number, to: number): ElementChange[] {
    const now = Date.now();
    const changes: ElementChange[] = [];
    for (let i = from; i < to; i++) {
      const op = batch[i]!;
      const name = this.setFor(op.set, op.target).name;
      const left = op.op === 'add' ? remaining(op, now) : 0;
      // An add whose time ran out while staged is removed, as the script path does.
      if (op.op === 'add' && left !== 0)
        changes.push({ set: name, target: op.target, op: 'add', timeout: left });
      else changes.push({ set: name, target: op.target, op: 'delete', timeout: null });
    }
    return changes;
  }

  /** One netlink transaction; false when the kernel did not ack every message (nothing applied). */
  private sendNetlink(driver: ToolDriver, changes: ElementChange[]): boolean {
    // Small batches come from Node's pool; big ones (a bulk commit's) reuse one buffer, sent
    // before the next batch is encoded.
    const big = changes.length > 64;
    if (big && this.netlinkScratch.length === 0) this.netlinkScratch = Buffer.alloc(NETLINK_SCRATCH);
    const scratch = big ? this.netlinkScratch : undefined;
    const encoded = encodeElementBatch(this.opts.family, this.opts.table, changes, this.netlinkSeq, scratch);
    this.netlinkSeq = (this.netlinkSeq + encoded.acked.length + 2) % 0x7fffffff || 1;
    const sent = driver.netlink!(encoded.bytes, encoded.acked.length);
    const answer = sent ? readAnswer(sent.reply, encoded.acked) : undefined;
    // Our own transaction, in the generation chain like a script's (ADR 0043); one the kernel
    // refused moved nothing.
    if (sent) this.track(sent.gen, answer?.ok === true);
    if (answer?.ok) {
      this.netlinkCommits.sent++;
      return true;
    }
    this.netlinkCommits.fellBack++;
    this.log.debug(
      { backend: this.name, errno: answer && !answer.ok ? answer.errno : undefined },
      'netlink element batch not applied; taking the script path',
    );
    return false;
  }

  /**
   * The script for a batch, and what each touched set will hold once it applies. Yields to the
   * event loop every YIELD_EVERY elements, so writing a million-element script never stalls
   * detection or the bus for long.
   */
  private async plan(ops: StagedOp[], now: number) {
    const bySet = new Map<KernelSet, StagedOp[]>();
    for (const op of ops) {
      const ks = this.setFor(op.set, op.target);
      const list = bySet.get(ks);
      if (list) list.push(op);
      else bySet.set(ks, [op]);
    }
    const lines: ScriptLine[] = [];
    const after: Array<() => void> = [];
    const result = { added: 0, deleted: 0 };
    for (const [ks, list] of bySet) {
      const where = this.where;
      if (!ks.interval) {
        // Plain sets can hold a million elements: one pass, no copy. They are not mirrored in
        // memory (the agent's decision store is the record, and a rebuild reloads from it).
        // Add statements are built while scanning: no per-element intermediate arrays.
        const addLines: ScriptLine[] = [];
        let parts: string[] = [];
        let elems: string[] = [];
        const dels: string[] = [];
        let n = 0;
        for (const op of list) {
          if (++n % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
          const left = op.op === 'add' ? remaining(op, now) : 0;
          if (op.op === 'add' && left !== 0) {
            parts.push(elementText(op.target.text, left));
            elems.push(op.target.text);
            result.added++;
            if (parts.length === ELEMENTS_PER_STATEMENT) {
              addLines.push({
                text: `add element ${where} ${ks.name} { ${parts.join(', ')} }`,
                set: ks.name,
                elements: elems,
              });
              parts = [];
              elems = [];
            }
          } else {
            dels.push(op.target.text);
            if (op.op === 'delete') result.deleted++;
          }
        }
        if (parts.length > 0) {
          addLines.push({
            text: `add element ${where} ${ks.name} { ${parts.join(', ')} }`,
            set: ks.name,
            elements: elems,
          });
        }
        // `delete element` fails the whole batch when the element already expired: adding it
        // first in the same transaction makes the delete always valid.
        lines.push(...elementLines('add', where, ks.name, dels, (i) => dels[i]!));
        lines.push(...elementLines('delete', where, ks.name, dels, (i) => dels[i]!));
        lines.push(...addLines);
        continue;
      }
      const next = new Map(ks.applied);
      for (const [k, t] of next)
        if (t.expiresAt !== null && t.expiresAt + EXPIRY_GRACE_MS < now) next.delete(k);
      for (const op of list) {
        const left = op.op === 'add' ? remaining(op, now) : 0;
        if (op.op === 'add' && left !== 0) {
          next.set(op.target.text, {
            target: op.target,
            expiresAt: left === null ? null : now + left * 1000,
          });
          result.added++;
        } else {
          next.delete(op.target.text);
          if (op.op === 'delete') result.deleted++;
        }
      }
      after.push(() => {
        ks.applied = next;
      });
      const render = (list: Tracked[]) => (i: number) => {
        const t = list[i]!;
        return elementText(
          t.target.text,
          t.expiresAt === null ? null : Math.ceil((t.expiresAt - now) / 1000),
        );
      };
      const oldTops = topLevel(
        [...ks.applied.values()].filter((t) => t.expiresAt === null || t.expiresAt + EXPIRY_GRACE_MS >= now),
      );
      const newTops = topLevel(next.values());
      const gone = [...oldTops.keys()].filter((k) => !newTops.has(k));
      const fresh = [...newTops.values()].filter((t) => !oldTops.has(t.target.text));
      const clash = gone.some((g) => fresh.some((f) => overlaps(oldTops.get(g)!.target, f.target)));
      if (clash) {
        // nft checks overlaps against the set as it was, even for elements deleted earlier in the
        // same batch; flushing and refilling the (small) range set in one transaction is accepted.
        const all = [...newTops.values()];
        lines.push({ text: `flush set ${where} ${ks.name}`, set: ks.name });
        lines.push(
          ...elementLines(
            'add',
            where,
            ks.name,
            all.map((t) => t.target.text),
            render(all),
          ),
        );
      } else {
        lines.push(...elementLines('add', where, ks.name, gone, (i) => gone[i]!));
        lines.push(...elementLines('delete', where, ks.name, gone, (i) => gone[i]!));
        lines.push(
          ...elementLines(
            'add',
            where,
            ks.name,
            fresh.map((t) => t.target.text),
            render(fresh),
          ),
        );
      }
    }
    return { lines, after, result };
  }

  /**
   * Replaces the whole content of every set with `desired` in one transaction (flush + add):
   * no moment without protection, and no need to read a million elements back. Plain-set
   * elements go straight into statement text as they are read (no per-element objects kept:
   * the text is the only copy); ranges, which are few, are gathered to drop nested ones.
   */
  async rebuild(desired: Iterable<FirewallEntry>): Promise<number> {
    const now = Date.now();
    const ranges = new Map<KernelSet, Map<string, Tracked>>();
    const plain = new Map<KernelSet, string[]>();
    for (const ks of this.sets.values()) if (ks.interval) ranges.set(ks, new Map());
    const body: ScriptLine[] = [];
    let loaded = 0;
    for (const e of desired) {
      loaded++;
      const ks = this.setFor(e.set, e.target);
      if (e.timeout !== null && e.timeout <= 0) continue;
      if (ks.interval) {
        gatherRange(ranges, ks, e, now);
        continue;
      }
      let parts = plain.get(ks);
      if (!parts) {
        parts = [];
        plain.set(ks, parts);
      }
      parts.push(elementText(e.target.text, e.timeout));
      if (parts.length === ELEMENTS_PER_STATEMENT) {
        body.push(this.inlineAdd(ks, parts));
        parts.length = 0;
      }
    }
    for (const [ks, parts] of plain) if (parts.length > 0) body.push(this.inlineAdd(ks, parts));
    for (const [ks, content] of ranges) {
      const keep = [...topLevel(content.values()).values()];
      body.push(
        ...elementLines(
          'add',
          this.where,
          ks.name,
          keep.map((t) => t.target.text),
          (i) => {
            const t = keep[i]!;
            return elementText(
              t.target.text,
              t.expiresAt === null ? null : Math.ceil((t.expiresAt - now) / 1000),
            );
          },
        ),
      );
    }
    // After the loop: new logical sets met there are part of the declaration.
    const lines: ScriptLine[] = this.opts.setOnly ? [] : this.declaration();
    for (const ks of this.sets.values())
      lines.push({ text: `flush set ${this.where} ${ks.name}`, set: ks.name });
    for (const l of body) lines.push(l);
    body.length = 0;
    await this.apply(lines, 'rebuild');
    this.declared = true;
    for (const [ks, content] of ranges) ks.applied = content;
    return loaded;
  }

  /**
   * What the kernel holds, read over netlink (ADR 0043). Quiet when the generation is where our
   * own transactions left it after a verified repair: nothing was read. Otherwise each plain set
   * is read a few messages deep; a set that ends there is small (a flushed or new set) and is
   * read whole. A bigger one is read whole only when `full` allows and the last whole read is
   * far enough behind (the kernel's cost grows with the size squared: ≈ 50 s of CPU for 1M);
   * otherwise, or when someone else committed while it was read, the repair refills it.
   */
  async scan(opts: { full?: boolean; fresh?: boolean } = {}): Promise<NftScan | undefined> {
    const tools = await this.open();
    if (tools.kind !== 'library') return undefined;
    const now = (await tools.run(['--generation'])).generation;
    if (now === undefined) return undefined;
    if (this.verified && this.gen === now && !opts.fresh)
      return { quiet: true, sets: new Map(), unread: new Set() };
    // The chain starts here: our transactions carry it on, anyone else's breaks it.
    if (this.gen !== now) this.refilledIntact.clear();
    this.gen = now;
    this.verified = false;
    const sets = new Map<string, SetIndex>();
    const unread = new Set<string>();
    for (const ks of [...this.sets.values()].filter((k) => !k.interval)) {
      const read = async (rounds: number) => {
        const at = Date.now();
        const family = String(NFPROTO[this.opts.family]);
        // A probe (a few messages) runs on the calling thread; a whole read (rounds 0) in the worker.
        const r = await tools.run(['--dump-set', family, this.opts.table, ks.name, String(rounds)], '', {
          small: rounds > 0,
        });
        if (!r.dump)
          throw new RampartError(
            'E_FIREWALL',
            `nftables: cannot read set ${this.where} ${ks.name}: ${r.spawnError?.message ?? 'no answer'}`,
          );
        return { dump: r.dump, at };
      };
      let got = await read(PROBE_ROUNDS);
      if (got.dump.status === 'partial' && opts.full !== false && Date.now() >= this.nextFullRead) {
        got = await read(0);
        this.nextFullRead = Date.now() + FULL_READ_SPACING * (Date.now() - got.at);
      }
      // Our own commits during a read (a long one runs beside them) change nothing it could get
      // wrong; anyone else's might have (a flush half-way through), so the read is not used.
      const ours = (await tools.run(['--generation'])).generation === this.gen && this.gen !== undefined;
      if (got.dump.status === 'partial' || !ours) unread.add(ks.name);
      else sets.set(ks.name, new SetIndex(got.dump, got.at, Date.now() - got.at));
    }
    return { quiet: false, sets, unread };
  }

  /**
   * Makes the kernel hold `desired` by changing what differs from `scan` only, in transactions of
   * at most COMMIT_SLICE elements: missing ones added, strays deleted, a time left too far from
   * the ban's replaced. Elements that are right are not touched (their timeouts run on). Range
   * sets are small: listed, and refilled in one transaction when they differ.
   */
  async repair(desired: AsyncIterable<readonly FirewallEntry[]>, given: KernelScan): Promise<RepairCounts> {
    let scan = given as NftScan;
    const counts = { added: 0, deleted: 0, renewed: 0, refilled: 0 };
    const current = async () => (await (await this.open()).run(['--generation'])).generation;
    if (scan.quiet) {
      if (this.verified && (await current()) === this.gen) return counts;
      // Someone committed since that scan: look again now, without a long read.
      const again = await this.scan({ full: false });
      if (!again || again.quiet) return counts;
      scan = again;
    }
    try {
      if (!this.opts.setOnly) {
        await this.apply(this.declaration(), 'repair');
        this.declared = true;
      }
      // The scan holds while only our transactions followed it. Anyone else's (a flush between
      // the scan and this lock, or during this pass) makes it stale: from then on every desired
      // element is added again and no stray is deleted; the broken chain brings the next pass.
      let trusted = this.gen !== undefined && (await current()) === this.gen;
      const work = new RepairBatch(this.where);
      const ranges = new Map<KernelSet, Map<string, Tracked>>();
      for (const ks of this.sets.values()) if (ks.interval) ranges.set(ks, new Map());
      const flush = async () => {
        await this.applyRepair(work);
        if (this.gen === undefined) trusted = false;
      };
      for await (const page of desired) {
        const now = Date.now();
        for (const e of page) {
          if (e.timeout !== null && e.timeout <= 0) continue;
          const ks = this.setFor(e.set, e.target);
          if (ks.interval) {
            gatherRange(ranges, ks, e, now);
            continue;
          }
          // A set not read this time (too big, or changed by someone else meanwhile) gets every
          // desired element again: what went missing comes back; its strays wait for a read.
          const index = trusted ? scan.sets.get(ks.name) : undefined;
          if (!index && trusted && this.refilledIntact.has(ks.name)) continue;
          const i = index ? index.find(e.target) : -1;
          if (i >= 0) {
            index!.mark(i);
            if (index!.timeLeftMatches(i, now, e.timeout)) continue;
            work.renew(ks.name, e.target.text, elementText(e.target.text, e.timeout));
            counts.renewed++;
          } else {
            work.add(ks.name, e.target.text, elementText(e.target.text, e.timeout));
            if (index) counts.added++;
            else counts.refilled++;
          }
          if (work.size >= COMMIT_SLICE) await flush();
        }
        if (work.size >= COMMIT_SLICE) await flush();
      }
      for (const ks of this.sets.values()) {
        const index = scan.sets.get(ks.name);
        if (!index || ks.interval) continue;
        for (const text of index.unmarked(ks.family)) {
          if (!trusted) break;
          work.remove(ks.name, text);
          counts.deleted++;
          if (work.size >= COMMIT_SLICE) await flush();
        }
      }
      await flush();
      for (const [ks, content] of ranges) await this.repairRanges(ks, content, counts);
      // Verified when nobody else committed since the scan began, and every set was read.
      const end = await current();
      const intact = trusted && end !== undefined && end === this.gen;
      this.verified = intact && scan.unread.size === 0;
      for (const name of scan.sets.keys()) this.refilledIntact.delete(name);
      if (intact) for (const name of scan.unread) this.refilledIntact.add(name);
      else this.refilledIntact.clear();
      return counts;
    } catch (err) {
      this.gen = undefined;
      this.verified = false;
      this.refilledIntact.clear();
      throw err;
    }
  }

  private async applyRepair(work: RepairBatch): Promise<void> {
    const lines = work.take();
    if (lines.length === 0) return;
    const declare = this.declared || this.opts.setOnly ? [] : this.declaration();
    await this.apply([...declare, ...lines], 'repair');
    this.declared = true;
  }

  /** A range set (small): listed, and flushed and refilled in one transaction when it differs. */
  private async repairRanges(
    ks: KernelSet,
    content: Map<string, Tracked>,
    counts: RepairCounts,
  ): Promise<void> {
    const now = Date.now();
    const tops = topLevel(content.values());
    // Few ranges wanted (the usual case): the listing runs inline, so a reconcile pass that has to
    // look (after drift, or bans that expired) needs no worker thread either.
    const held = await this.listSet(ks, { small: tops.size <= SMALL_RANGE_SET });
    const kernel = new Map(held.map((e) => [e.target.text, e.timeout]));
    const wantLeft = (t: Tracked) => (t.expiresAt === null ? null : Math.ceil((t.expiresAt - now) / 1000));
    const same =
      kernel.size === tops.size &&
      [...tops.values()].every(
        (t) => kernel.has(t.target.text) && timeLeftMatches(kernel.get(t.target.text) ?? null, wantLeft(t)),
      );
    ks.applied = content;
    if (same) return;
    for (const t of tops.values()) if (!kernel.has(t.target.text)) counts.added++;
    for (const k of kernel.keys()) if (!tops.has(k)) counts.deleted++;
    const keep = [...tops.values()];
    await this.apply(
      [
        { text: `flush set ${this.where} ${ks.name}`, set: ks.name },
        ...elementLines(
          'add',
          this.where,
          ks.name,
          keep.map((t) => t.target.text),
          (i) => elementText(keep[i]!.target.text, wantLeft(keep[i]!)),
        ),
      ],
      'repair',
    );
  }

  private inlineAdd(ks: KernelSet, parts: string[]): ScriptLine {
    return {
      text: `add element ${this.where} ${ks.name} { ${parts.join(', ')} }`,
      set: ks.name,
      inline: true,
    };
  }

  /** Empties the sets (all, or one logical set); the table and rules stay. */
  async flush(set?: string): Promise<void> {
    const targets = [...this.sets.values()].filter((ks) => set === undefined || ks.logical === set);
    if (targets.length === 0) return;
    await this.apply(
      targets.map((ks) => ({ text: `flush set ${this.where} ${ks.name}`, set: ks.name })),
      'flush',
    );
    for (const ks of targets) this.forget(ks);
  }

  async list(set?: string): Promise<FirewallEntry[]> {
    const out: FirewallEntry[] = [];
    const now = Date.now();
    for (const ks of this.sets.values()) {
      if (set !== undefined && ks.logical !== set) continue;
      const held = await this.listSet(ks);
      for (const e of held) out.push({ target: e.target, set: ks.logical, timeout: e.timeout });
      if (ks.interval) {
        // The kernel is the truth: a range flushed behind our back must leave the mirror too, or
        // a repair would think it still there and write nothing. Nested ranges stay listed
        // while a range around them is held, since that range enforces them.
        const kernel = held.map((e) => e.target);
        const next = new Map<string, Tracked>();
        for (const e of held)
          next.set(e.target.text, {
            target: e.target,
            expiresAt: e.timeout === null ? null : now + e.timeout * 1000,
          });
        for (const [k, t] of ks.applied) {
          if (next.has(k) || (t.expiresAt !== null && t.expiresAt + EXPIRY_GRACE_MS < now)) continue;
          if (
            !kernel.some(
              (c) => c.family === t.target.family && c.first <= t.target.first && t.target.last <= c.last,
            )
          )
            continue;
          next.set(k, t);
          out.push({
            target: t.target,
            set: ks.logical,
            timeout: t.expiresAt === null ? null : Math.ceil((t.expiresAt - now) / 1000),
          });
        }
        ks.applied = next;
      }
    }
    return out;
  }

  private async listSet(ks: KernelSet, opts?: RunOptions) {
    const r = await this.nft(['-j', 'list', 'set', this.opts.family, this.opts.table, ks.name], '', opts);
    if (r.code !== 0) {
      // Own table gone (a reload): it holds nothing, and the next commit declares it again.
      if (!this.opts.setOnly && /No such file or directory/.test(r.stderr)) {
        this.declared = false;
        return [];
      }
      throw new RampartError(
        'E_FIREWALL',
        `nftables: cannot list set ${this.where} ${ks.name}: ${firstLine(r.stderr)}`,
      );
    }
    try {
      return parseListedSet(r.stdout);
    } catch (err) {
      throw new RampartError(
        'E_FIREWALL',
        `nftables: cannot read set ${this.where} ${ks.name}: nft printed no valid JSON`,
        {
          cause: err,
        },
      );
    }
  }

  private forget(ks: KernelSet): void {
    ks.applied.clear();
  }

  async shutdown(): Promise<void> {
    // Deliberately leaves the table: kernel timeouts keep enforcing bans while rampart is down.
    const tools = this.tools;
    this.tools = undefined;
    this.opened = undefined;
    if (tools) await (await tools.catch(() => undefined))?.close();
  }

  /** Removes rampart's own table (the `rampart firewall flush --all` path; never in set-only mode). */
  async destroy(): Promise<void> {
    if (this.opts.setOnly) return;
    await this.apply(
      [{ text: `add table ${this.where}` }, { text: `delete table ${this.where}` }],
      'destroy',
    );
    this.declared = false;
    for (const ks of this.sets.values()) this.forget(ks);
  }

  private async open(): Promise<ToolDriver> {
    this.tools ??= openDriver({
      tool: 'nft',
      program: this.opts.nft,
      choice: this.choice,
      backend: this.name,
      prefix: this.opts.prefix,
      timeoutMs: this.opts.timeoutMs,
      logger: this.log,
    });
    let tools: ToolDriver;
    try {
      tools = await this.tools;
    } catch (err) {
      this.tools = undefined;
      throw err;
    }
    this.driver = tools.kind;
    this.opened = tools;
    return tools;
  }

  private async nft(args: string[], input: string | string[], opts?: RunOptions) {
    return (await this.open()).run(args, input, opts);
  }

  /**
   * Follows the kernel's generation across our own transactions: one that moved it by at most one
   * (by none when it failed) from where we left it keeps the chain; anything else means someone
   * else committed in between, and the next reconcile must look (ADR 0043). Without a `before`
   * (the netlink element batch reads only `after`, ADR 0066) the chain's own value stands for it:
   * a foreign commit before ours or during it shows as `after` one further than ours alone moves it.
   */
  private track(g: { before?: number; after: number } | undefined, committed: boolean): void {
    const step = committed ? 1 : 0;
    const before = g?.before ?? this.gen;
    if (g && this.gen !== undefined && before === this.gen && g.after >= before && g.after - before <= step)
      this.gen = g.after;
    else {
      this.gen = undefined;
      this.verified = false;
    }
  }

  /** Runs a script as one transaction; failures name the backend, set and element. */
  private async apply(script: ScriptLine[], what: string, ops: StagedOp[] = []): Promise<void> {
    const r = await this.nft(
      ['-f', '-'],
      script.map((l) => `${l.text}\n`),
    );
    this.track(r.gen, r.code === 0);
    // Whatever nft blamed, say which batch is waiting: its size and first set and element.
    const staged =
      ops.length > 0
        ? `; ${ops.length} change(s) stay staged (first: set ${ops[0]!.set}, element ${ops[0]!.target.text})`
        : '';
    if (r.spawnError?.code === 'ELIBRARY') {
      throw new RampartError('E_FIREWALL', `nftables: ${what} failed in ${r.spawnError.message}${staged}`, {
        cause: r.spawnError,
      });
    }
    if (r.spawnError) {
      const first = script.find(carriesElements);
      throw new RampartError(
        'E_FIREWALL',
        `nftables: cannot run "${this.opts.nft}" (${r.spawnError.code ?? r.spawnError.message}) for ${what} of ${first ? `set ${this.where} ${first.set}, element ${firstElement(first)}` : `table ${this.where}`}: install nftables or set firewall.nftables.nft${staged}`,
        { cause: r.spawnError },
      );
    }
    if (r.code === 0) return;
    const f = parseNftError(r.stderr, script);
    const chain = f.line?.startsWith('add chain');
    const hint = /Operation not permitted/.test(f.message)
      ? ' (needs root or CAP_NET_ADMIN)'
      : chain && /not supported/i.test(f.message)
        ? ` (the chain exists with another hook or priority: delete table ${this.where} to change it)`
        : /not supported/i.test(f.message) && !/Could not resolve/.test(f.message)
          ? ' (is the nf_tables kernel module available?)'
          : '';
    const about = f.set
      ? `set ${this.where} ${f.set}${f.element ? `, element ${f.element}` : ''}`
      : `table ${this.where}${f.line ? ` (${f.line.slice(0, 80)})` : ''}`;
    const err = new RampartError(
      'E_FIREWALL',
      `nftables: ${what} failed on ${about}: ${f.message}${hint}${staged}`,
    );
    // Without a hint it is about the script itself: an element or set the kernel will not take.
    if (!hint && r.code !== null) aboutContent.add(err);
    throw err;
  }
}

/** Ranges (few) are gathered per set, so nested ones can be left out of the kernel. */
function gatherRange(
  ranges: Map<KernelSet, Map<string, Tracked>>,
  ks: KernelSet,
  e: FirewallEntry,
  now: number,
): void {
  let content = ranges.get(ks);
  if (!content) {
    content = new Map();
    ranges.set(ks, content);
  }
  content.set(e.target.text, {
    target: e.target,
    expiresAt: e.timeout === null ? null : now + e.timeout * 1000,
  });
}

function refusal(op: StagedOp, reason: string): Refusal {
  return { op: op.op, target: op.target, set: op.set, reason };
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? 'no output'
  );
}

/** Adds to `done` what `batch[from, …)` changed, once its transaction (`part`, as sent) applied. */
function countDone(batch: StagedOp[], part: ElementChange[], from: number, done: CommitResult): void {
  for (let i = 0; i < part.length; i++) {
    if (batch[from + i]!.op === 'delete') done.deleted++;
    else if (part[i]!.op === 'add') done.added++;
  }
}

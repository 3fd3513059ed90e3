import { randomBytes } from 'node:crypto';
import { isSingleHost, parseTarget, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { type DriverChoice, openDriver, type ToolDriver } from './driver.js';
import { encodeIpsetChanges, IPSET_NETLINK_MAX, type IpsetChange } from './ipset-netlink.js';
import {
  IPSET_MAX_TIMEOUT,
  type IpsetHeader,
  type IpsetKind,
  type IpsetNames,
  ipsetNames,
  kindSpec,
  parseHeaders,
  toolFailure,
} from './ipset-sets.js';
import { readAnswer, selfConsistent } from './netlink-message.js';
import type { ToolResult, ToolRunner } from './run-tool.js';
import { DEFAULT_SET } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry, Refusal } from './types.js';

export { IPSET_MAX_TIMEOUT, type IpsetNames, ipsetNames } from './ipset-sets.js';

export interface IpsetOptions extends ToolRunner {
  /** Logical set used when `add`/`delete` name none; default `blocklist`. */
  defaultSet?: string;
  /** Per logical set, kernel names that differ from the default naming (see {@link ipsetNames}). */
  sets?: Record<string, Partial<IpsetNames>>;
  /**
   * Create missing sets (with `timeout 0`, so every element may carry its own timeout, and
   * `maxelem`). Off by default: the operator's sets are never created or destroyed, and a missing
   * set is an error that names it.
   */
  create?: boolean;
  /** `maxelem` of sets this backend creates; default 65536 (ipset's own default). */
  maxelem?: number;
  /** `hashsize` of sets this backend creates; default 1024. */
  hashsize?: number;
  /** The ipset program; default `ipset`. */
  program?: string;
  /** libipset in-process (`library`), the ipset program (`spawn`), or the library when it loads. */
  driver?: DriverChoice;
  logger?: Logger;
}

interface Staged {
  logical: string;
  kind: IpsetKind;
  kset: string;
  target: Target;
  /** undefined = delete. */
  timeout: DurationSeconds | undefined;
  /** When it was staged (ms): a ban that waits (a retry after a failure) keeps its true end. */
  at: number;
}

/** At most this many changes are sent from the calling thread; more go from the kernel worker. */
const IPSET_INLINE_MAX = 64;

/** Bytes of the buffer big netlink sends reuse: IPSET_NETLINK_MAX IPv6 changes and their headers. */
const IPSET_NETLINK_SCRATCH = IPSET_NETLINK_MAX * 128;

function kindOf(t: Target): IpsetKind {
  if (isSingleHost(t)) return t.family === 4 ? 'v4' : 'v6';
  return t.family === 4 ? 'v4net' : 'v6net';
}

/**
 * ipset backend: stages adds and deletes and applies each commit through ONE `ipset -exist
 * restore` process (re-adding refreshes the timeout, deleting an absent element is fine).
 * Addresses go to hash:ip sets and ranges to hash:net sets, one per family; see
 * {@link ipsetNames} for the naming. Kernel timeouts carry each ban's remaining time (clamped to
 * ipset's maximum, 2147483 s); a permanent ban is `timeout 0`. It manages only elements: the
 * iptables/nftables rules that match the sets (`-m set --match-set NAME src -j DROP`) are the
 * operator's.
 */
export class IpsetFirewall implements Firewall {
  readonly name = 'ipset';
  private readonly opts: IpsetOptions;
  private readonly program: string;
  private readonly defaultSet: string;
  private staged: Staged[] = [];
  /** The last commit failed: de-duplicate before retrying (see compact). */
  private failed = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly names = new Map<string, IpsetNames>();
  private headers: Map<string, IpsetHeader> | undefined;
  private readonly warnedNoTimeout = new Set<string>();
  private tools: Promise<ToolDriver> | undefined;
  /** The driver once open (the netlink path needs it without waiting). */
  private opened: ToolDriver | undefined;
  private netlinkSeq = 1;
  /** Reused by big netlink sends (allocated at the first one). */
  private netlinkScratch = Buffer.alloc(0);
  /** Element changes sent as netlink messages, and sends that fell back to a script. */
  readonly netlinkCommits = { sent: 0, fellBack: 0 };
  /** How commits reach the kernel, known once the first call opened the driver. */
  driver: 'library' | 'spawn' | undefined;
  refusedTotal = 0;

  constructor(opts: IpsetOptions = {}) {
    this.opts = opts;
    this.program = opts.program ?? 'ipset';
    this.defaultSet = opts.defaultSet ?? DEFAULT_SET;
    this.namesFor(this.defaultSet);
    for (const logical of Object.keys(opts.sets ?? {})) this.namesFor(logical);
  }

  private namesFor(logical: string): IpsetNames {
    let n = this.names.get(logical);
    if (!n) {
      n = ipsetNames(logical, this.opts.sets?.[logical]);
      this.names.set(logical, n);
    }
    return n;
  }

  /** Runs one ipset command line through the driver (libipset in-process, or the program). */
  private async ipset(args: string[], input: string | string[] = ''): Promise<ToolResult> {
    this.tools ??= openDriver({
      tool: 'ipset',
      program: this.program,
      // A program path of the operator's own (a wrapper) is a request to run that program.
      choice: this.opts.driver ?? (this.program !== 'ipset' ? 'spawn' : 'auto'),
      backend: this.name,
      prefix: this.opts.prefix,
      timeoutMs: this.opts.timeoutMs ?? 600_000,
      logger: this.opts.logger,
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
    return tools.run(args, input);
  }

  /** Reads every set's header in one `ipset list -t`. */
  private async readHeaders(): Promise<Map<string, IpsetHeader>> {
    const r = await this.ipset(['list', '-t']);
    if (r.code !== 0 || r.spawnError)
      throw new RampartError('E_FIREWALL', toolFailure('ipset: reading set headers', r));
    return parseHeaders(r.stdout);
  }

  /** Checks that ipset works here; with `create`, creates the configured sets. */
  async init(): Promise<void> {
    this.headers = await this.readHeaders();
    if (this.opts.create) {
      // Only what is missing: an existing set, the operator's or ours, is used as it is.
      const missing = [...this.names.values()].flatMap((n) => this.createLines(n));
      if (missing.length > 0) {
        await this.restore(missing.map((l) => `${l}\n`).join(''), 'creating sets', (n) => missing[n - 1]);
        this.headers = await this.readHeaders();
      }
    }
  }

  private createLines(n: IpsetNames): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const kind of ['v4', 'v6', 'v4net', 'v6net'] as const) {
      const kset = n[kind];
      if (seen.has(kset) || this.headers?.has(kset)) continue;
      seen.add(kset);
      out.push(this.createLine(kset, kind));
    }
    return out;
  }

  private createLine(kset: string, kind: IpsetKind): string {
    const { type, family } = kindSpec(kind);
    const maxelem = this.opts.maxelem ?? 65536;
    const hashsize = this.opts.hashsize ?? 1024;
    return `create ${kset} ${type} family ${family} hashsize ${hashsize} maxelem ${maxelem} timeout 0`;
  }

  add(target: Target, timeout: DurationSeconds, set?: string): void {
    this.stage(target, timeout, set);
  }

  delete(target: Target, set?: string): void {
    this.stage(target, undefined, set);
  }

  private stage(target: Target, timeout: DurationSeconds | undefined, set?: string): void {
    const logical = set ?? this.defaultSet;
    const kind = kindOf(target);
    // Append-only, no de-duplication: ipset applies the lines in order under -exist, so the last
    // change to an element wins in the kernel exactly as it would in a map, and a million adds
    // cost a million array pushes instead of a million hash-table inserts.
    this.staged.push({ logical, kind, kset: this.namesFor(logical)[kind], target, timeout, at: Date.now() });
  }

  /** Staged operations (an address staged twice counts twice). */
  pending(): number {
    return this.staged.length;
  }

  /** Applies everything staged in one `ipset -exist restore`; the counts are of operations. */
  commit(): Promise<CommitResult> {
    // One commit at a time: each takes the staged prefix and removes exactly that prefix.
    const next = this.queue.then(() => this.commitNow());
    this.queue = next.catch(() => {});
    return next;
  }

  private async commitNow(): Promise<CommitResult> {
    if (this.staged.length === 0) return { added: 0, deleted: 0 };
    if (this.failed) this.compact();
    // Ops staged while ipset runs are appended after this prefix and stay for the next commit.
    const all = this.staged.slice();
    const prelude = await this.prepare(all);
    const refused: Refusal[] = [];
    const batch: Staged[] = [];
    for (const s of all) {
      const why = prelude.unusable.get(s.kset);
      if (why) refused.push(refusalOf(s, why));
      else batch.push(s);
    }
    const head = new Map<string, string>();
    for (const s of batch) {
      if (head.has(s.kset)) continue;
      const timeouts = prelude.created.has(s.kset) || this.headers!.get(s.kset)?.timeout === true;
      head.set(s.kset, timeouts ? 't' : '');
    }
    const lines: string[] = prelude.lines.map((l) => `${l}\n`);
    const refs: Array<Staged | string> = [...prelude.lines];
    let added = 0;
    let deleted = 0;
    const now = Date.now();
    let n = 0;
    // Straight to the kernel as netlink messages where the driver can (ADR 0072); the rest, or
    // everything when the messages could not be used, as a script.
    const quick = prelude.lines.length === 0 ? await this.viaNetlink(batch, head, now) : undefined;
    if (quick) {
      added += quick.added;
      deleted += quick.deleted;
    }
    for (let i = quick?.taken ?? 0; i < batch.length; i++) {
      const s = batch[i]!;
      // A million lines are written in slices, the event loop served in between.
      if (++n % 20_000 === 0) await new Promise<void>((r) => setImmediate(r));
      const t = kernelTimeout(s, now, head.get(s.kset) !== '');
      if (t === DELETE) {
        lines.push(`del ${s.kset} ${s.target.text}\n`);
        deleted++;
      } else if (t === NO_TIMEOUT) {
        lines.push(`add ${s.kset} ${s.target.text}\n`);
        added++;
      } else {
        lines.push(`add ${s.kset} ${s.target.text} timeout ${t}\n`);
        added++;
      }
      refs.push(s);
    }
    try {
      for (const bad of await this.restoreSettingAside(lines, refs, 'commit')) {
        refused.push(refusalOf(bad.op, bad.reason));
        if (bad.op.timeout === undefined) deleted--;
        else added--;
      }
    } catch (err) {
      this.failed = true;
      throw err;
    }
    this.failed = false;
    this.staged.splice(0, all.length);
    if (prelude.created.size > 0) this.headers = await this.readHeaders();
    for (const r of refused) {
      this.refusedTotal++;
      this.opts.logger?.error(
        { backend: this.name, set: r.set, element: r.target.text, op: r.op, reason: r.reason },
        'firewall refused an element; set aside, the rest of the batch is applied',
      );
    }
    return refused.length > 0 ? { added, deleted, refused } : { added, deleted };
  }

  /**
   * Runs the lines; a line the kernel refuses (a bad element) is set aside and the lines after it
   * are sent again, until everything else is applied. ipset stops at the first failing line
   * (the library goes on and names every one); the lines before it are applied, and every line
   * is idempotent under -exist. A failing `create` line, or a failure naming no line, is thrown.
   */
  private async restoreSettingAside(
    lines: string[],
    refs: Array<Staged | string>,
    what: string,
  ): Promise<Array<{ op: Staged; reason: string }>> {
    const out: Array<{ op: Staged; reason: string }> = [];
    let from = 0;
    while (from < lines.length) {
      const sent = lines.slice(from);
      const r = await this.ipset(['-exist', 'restore'], sent);
      if (r.code === 0 && !r.spawnError) return out;
      const failures = [...r.stderr.matchAll(/Error in line (\d+): (.*)/g)].map((m) => ({
        n: Number(m[1]),
        reason: m[2]!.trim(),
      }));
      const first = failures[0];
      const ref = first ? refs[from + first.n - 1] : undefined;
      if (!first || r.spawnError || !ref || typeof ref === 'string' || /is full/.test(first.reason)) {
        this.throwRestore(r, what, sent.length, (n) => refs[from + n - 1]);
      }
      const skip = new Set<number>();
      for (const f of failures) {
        const op = refs[from + f.n - 1];
        if (op === undefined || typeof op === 'string') continue;
        skip.add(from + f.n - 1);
        out.push({ op, reason: f.reason });
      }
      const restart = from + first!.n;
      const keepLines: string[] = lines.slice(0, restart);
      const keepRefs: Array<Staged | string> = refs.slice(0, restart);
      for (let i = restart; i < lines.length; i++) {
        if (skip.has(i)) continue;
        keepLines.push(lines[i]!);
        keepRefs.push(refs[i]!);
      }
      lines = keepLines;
      refs = keepRefs;
      from = restart;
    }
    return out;
  }

  /**
   * The leading part of `batch` that went to the kernel as netlink messages (ipset-netlink.ts),
   * IPSET_NETLINK_MAX changes per send with the event loop served between sends; undefined when
   * the driver cannot send them (spawning, or no library loaded). It stops at the first change
   * that cannot be encoded (a set of another type, a target whose text and numbers disagree) or
   * the first send the kernel did not ack whole: from there the script path takes over, and
   * reports what the kernel refuses.
   */
  private async viaNetlink(
    batch: Staged[],
    head: Map<string, string>,
    now: number,
  ): Promise<{ taken: number; added: number; deleted: number } | undefined> {
    const driver = this.opened;
    if (driver?.kind !== 'library' || !driver.netlink) return undefined;
    const done = { taken: 0, added: 0, deleted: 0 };
    while (done.taken < batch.length) {
      if (done.taken > 0) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.opened !== driver) return done;
      }
      const changes = this.netlinkChanges(batch, done.taken, head, now);
      if (changes.length === 0 || !(await this.sendNetlink(driver, changes))) {
        if (changes.length > 0) this.netlinkCommits.fellBack++;
        return done;
      }
      this.netlinkCommits.sent++;
      done.taken += changes.length;
      for (const c of changes) {
        if (c.op === 'add') done.added++;
        else done.deleted++;
      }
    }
    return done;
  }

  /** Changes for `batch` from `from`, up to IPSET_NETLINK_MAX, until one that cannot be encoded. */
  private netlinkChanges(
    batch: Staged[],
    from: number,
    head: Map<string, string>,
    now: number,
  ): IpsetChange[] {
    const out: IpsetChange[] = [];
    const end = Math.min(batch.length, from + IPSET_NETLINK_MAX);
    for (let i = from; i < end; i++) {
      const s = batch[i]!;
      const type = this.headers?.get(s.kset)?.type;
      if ((type !== 'hash:ip' && type !== 'hash:net') || !selfConsistent(s.target)) break;
      const t = kernelTimeout(s, now, head.get(s.kset) !== '');
      out.push({
        set: s.kset,
        target: s.target,
        op: t === DELETE ? 'delete' : 'add',
        timeout: t === DELETE || t === NO_TIMEOUT ? null : t,
        cidr: type === 'hash:net',
      });
    }
    return out;
  }

  /**
   * One send; false when the kernel did not ack every message (some may have applied). A few
   * changes go from this thread at once (a single ban: no thread hop); more from the kernel
   * worker, because ipset grows a full hash within the send that adds to it: 40-120 ms on this
   * thread at a few hundred thousand elements.
   */
  private async sendNetlink(driver: ToolDriver, changes: IpsetChange[]): Promise<boolean> {
    // Sends too big for this thread also reuse one buffer (the worker gets a copy).
    const big = changes.length > IPSET_INLINE_MAX;
    if (big && this.netlinkScratch.length === 0) this.netlinkScratch = Buffer.alloc(IPSET_NETLINK_SCRATCH);
    const encoded = encodeIpsetChanges(changes, this.netlinkSeq, big ? this.netlinkScratch : undefined);
    this.netlinkSeq = (this.netlinkSeq + encoded.acked.length) % 0x7fffffff || 1;
    let sent = big ? undefined : driver.netlink!(encoded.bytes, encoded.acked.length, false);
    // Too many for this thread, or calls queued ahead of this one (a listing): from the worker, in turn.
    if (!sent && driver.netlinkOffThread)
      sent = await driver.netlinkOffThread(encoded.bytes, encoded.acked.length, false);
    const answer = sent ? readAnswer(sent.reply, encoded.acked) : undefined;
    if (answer?.ok) return true;
    this.opts.logger?.debug(
      { backend: this.name, errno: answer && !answer.ok ? answer.errno : undefined },
      'ipset netlink messages not all applied; taking the script path',
    );
    return false;
  }

  /**
   * Keeps only the last op per element. Needed after a failure: an add that failed (set full)
   * and was then cancelled by a delete must not be sent, and fail, again.
   */
  private compact(): void {
    const last = new Map<string, number>();
    for (const [i, s] of this.staged.entries()) last.set(`${s.kset} ${s.target.text}`, i);
    const keep = this.staged.filter((s, i) => last.get(`${s.kset} ${s.target.text}`) === i);
    this.staged = keep;
  }

  /** Finds the sets a batch needs; missing ones are created (create: true) or an error. */
  private async prepare(
    batch: Staged[],
  ): Promise<{ lines: string[]; created: Set<string>; unusable: Map<string, string> }> {
    const needed = new Map<string, Staged>();
    for (const s of batch) if (!needed.has(s.kset)) needed.set(s.kset, s);
    if (!this.headers || [...needed.keys()].some((k) => !this.headers!.has(k))) {
      this.headers = await this.readHeaders();
    }
    const lines: string[] = [];
    const created = new Set<string>();
    // Sets that cannot take their elements: those are refused, the rest of the batch goes on.
    const unusable = new Map<string, string>();
    for (const [kset, s] of needed) {
      const h = this.headers.get(kset);
      const want = kindSpec(s.kind);
      if (!h) {
        if (!this.opts.create) {
          unusable.set(
            kset,
            `ipset: set "${kset}" does not exist (logical set "${s.logical}"); ` +
              `create it (ipset create ${kset} ${want.type} family ${want.family} timeout 0) or enable create`,
          );
          continue;
        }
        lines.push(this.createLine(kset, s.kind));
        created.add(kset);
        continue;
      }
      if (h.family && h.family !== want.family) {
        unusable.set(
          kset,
          `ipset: set "${kset}" is family ${h.family}; map IPv${s.target.family} ${s.kind.endsWith('net') ? 'ranges' : 'addresses'} of "${s.logical}" to a ${want.family} set`,
        );
        continue;
      }
      if (s.kind.endsWith('net') && !h.type.startsWith('hash:net')) {
        unusable.set(
          kset,
          `ipset: set "${kset}" is ${h.type} and cannot hold ranges; use a hash:net set for ranges`,
        );
        continue;
      }
      if (!h.timeout && !this.warnedNoTimeout.has(kset) && batch.some((b) => b.kset === kset && b.timeout)) {
        this.warnedNoTimeout.add(kset);
        this.opts.logger?.warn(
          { set: kset },
          'ipset set was created without timeout support: bans in it last until rampart removes them',
        );
      }
    }
    return { lines, created, unusable };
  }

  /** Runs one `ipset -exist restore` that must apply completely (create, flush, rebuild). */
  private async restore(
    text: string,
    what: string,
    lineAt: (n: number) => string | Staged | undefined,
  ): Promise<void> {
    if (text.length === 0) return;
    const r = await this.ipset(['-exist', 'restore'], text);
    if (r.code === 0 && !r.spawnError) return;
    this.throwRestore(r, what, text.split('\n').length - 1, lineAt);
  }

  /** The failure of a restore as one error naming the set, element and line. */
  private throwRestore(
    r: ToolResult,
    what: string,
    total: number,
    lineAt: (n: number) => string | Staged | undefined,
  ): never {
    const m = /Error in line (\d+): (.*)/.exec(r.stderr);
    if (!m || r.spawnError) throw new RampartError('E_FIREWALL', toolFailure(`ipset: ${what}`, r));
    const n = Number(m[1]);
    const reason = m[2]!.trim();
    const line = lineAt(n);
    let kset = '?';
    let elem = '?';
    let where = '';
    if (typeof line === 'string') {
      const words = line.split(' ');
      kset = words[1] ?? '?';
      elem = `(${words[0]} ${kset})`;
    } else if (line) {
      kset = line.kset;
      elem = line.target.text;
      where = ` (logical set "${line.logical}")`;
    }
    if (/is full/.test(reason)) {
      const max = this.headers?.get(kset)?.maxelem;
      throw new RampartError(
        'E_FIREWALL',
        `ipset: set "${kset}" is full${max ? ` (maxelem ${max})` : ''}: could not add ${elem} (batch line ${n} of ${total}); ` +
          'raise maxelem (a new set is needed: ipset cannot grow maxelem) or shorten ban times',
      );
    }
    throw new RampartError(
      'E_FIREWALL',
      `ipset: ${what}: set "${kset}"${where}, element ${elem}, batch line ${n}: ${reason}`,
    );
  }

  /** Empties the kernel sets of one logical set, or of all known ones; the sets themselves stay. */
  async flush(set?: string): Promise<void> {
    const logicals = set === undefined ? [...this.names.keys()] : [set];
    this.headers = await this.readHeaders();
    const ksets = new Set(logicals.flatMap((l) => Object.values(this.namesFor(l))));
    const lines = [...ksets].filter((k) => this.headers!.has(k)).map((k) => `flush ${k}`);
    await this.restore(lines.map((l) => `${l}\n`).join(''), 'flush', (n) => lines[n - 1]);
  }

  /**
   * Replaces the content of every known set with `desired`, atomically per set: a twin set is
   * filled and then `swap`ped with the live one in the same `ipset restore`, so there is no
   * moment without protection and nothing is read back. Sets of logical sets that `desired` does
   * not mention are emptied the same way. Returns the number of elements loaded.
   */
  async rebuild(entries: Iterable<FirewallEntry>): Promise<number> {
    // Read twice below, and only once allowed (FirewallEntry cursor): ipset sets stay small enough.
    const desired = Array.isArray(entries) ? (entries as FirewallEntry[]) : [...entries];
    for (const e of desired) this.namesFor(e.set);
    this.headers = await this.readHeaders();
    const byKset = new Map<string, { kind: IpsetKind; lines: string[]; logical: string }>();
    for (const [logical, names] of this.names) {
      for (const kind of ['v4', 'v6', 'v4net', 'v6net'] as const) {
        if (!byKset.has(names[kind])) byKset.set(names[kind], { kind, lines: [], logical });
      }
    }
    let loaded = 0;
    for (const e of desired) {
      if (e.timeout !== null && e.timeout <= 0) continue;
      loaded++;
      const kset = this.names.get(e.set)![kindOf(e.target)];
      const t = e.timeout === null ? 0 : Math.min(Math.max(1, e.timeout), IPSET_MAX_TIMEOUT);
      byKset.get(kset)!.lines.push(`${e.target.text} timeout ${t}`);
    }
    const tag = randomBytes(3).toString('hex');
    let text = '';
    const twins: string[] = [];
    for (const [kset, { kind, lines, logical }] of byKset) {
      const h = this.headers.get(kset);
      if (!h) {
        if (lines.length === 0) continue;
        if (!this.opts.create) {
          throw new RampartError(
            'E_FIREWALL',
            `ipset: set "${kset}" does not exist (needed to rebuild logical set "${logical}")`,
          );
        }
        text += `${this.createLine(kset, kind)}\n`;
        for (const l of lines) text += `add ${kset} ${l}\n`;
        continue;
      }
      const twin = `rp-${tag}-${twins.length}`;
      twins.push(twin);
      const { family } = kindSpec(kind);
      const hashsize = h.hashsize ? ` hashsize ${h.hashsize}` : '';
      const maxelem = h.maxelem ? ` maxelem ${h.maxelem}` : '';
      text += `create ${twin} ${h.type} family ${h.family ?? family}${hashsize}${maxelem}${h.timeout ? ' timeout 0' : ''}\n`;
      for (const l of lines) text += `add ${twin} ${h.timeout ? l : l.replace(/ timeout \d+$/, '')}\n`;
      text += `swap ${twin} ${kset}\ndestroy ${twin}\n`;
    }
    try {
      await this.restore(text, 'rebuild', () => undefined);
    } catch (err) {
      // Twins left behind by a failure are ours alone: remove them, keep the error.
      for (const twin of twins) await this.ipset(['destroy', twin]);
      throw err;
    }
    return loaded;
  }

  async list(set?: string): Promise<FirewallEntry[]> {
    const logicals = set === undefined ? [...this.names.keys()] : [set];
    if (set !== undefined) this.namesFor(set);
    this.headers = await this.readHeaders();
    const owners = new Map<string, string>();
    for (const logical of logicals) {
      for (const kset of Object.values(this.names.get(logical)!)) {
        if (this.headers.has(kset) && !owners.has(kset)) owners.set(kset, logical);
      }
    }
    const dumps = await Promise.all(
      [...owners.keys()].map(async (kset) => {
        const r = await this.ipset(['save', kset]);
        if (r.code !== 0 || r.spawnError)
          throw new RampartError('E_FIREWALL', toolFailure(`ipset: listing "${kset}"`, r));
        return r.stdout;
      }),
    );
    const out: FirewallEntry[] = [];
    for (const text of dumps) parseSave(text, owners, out);
    return out;
  }

  /** Bans outlive rampart (kernel timeouts), so shutting down leaves the sets alone. */
  async shutdown(): Promise<void> {
    const tools = this.tools;
    this.tools = undefined;
    this.opened = undefined;
    if (tools) await (await tools.catch(() => undefined))?.close();
  }
}

/** `kernelTimeout`: the element leaves the set (an unban, or a ban whose time ran out while staged). */
const DELETE = -1;
/** `kernelTimeout`: added without a timeout (the set was created without timeout support). */
const NO_TIMEOUT = -2;

/**
 * What the kernel is to do with a staged op at `now`: DELETE, NO_TIMEOUT, or add with this many
 * seconds (0: permanent), clamped to ipset's maximum.
 */
function kernelTimeout(s: Staged, now: number, setHasTimeouts: boolean): number {
  const left = s.timeout ? Math.ceil(s.timeout - (now - s.at) / 1000) : s.timeout;
  if (s.timeout === undefined || (left !== null && left !== undefined && left <= 0)) return DELETE;
  if (!setHasTimeouts) return NO_TIMEOUT;
  return left === null ? 0 : Math.min(left!, IPSET_MAX_TIMEOUT);
}

function refusalOf(s: Staged, reason: string): Refusal {
  return { op: s.timeout === undefined ? 'delete' : 'add', target: s.target, set: s.logical, reason };
}

/** Parses `ipset save` lines (`add NAME ELEM [timeout N] ...`) of the sets in `owners`. */
export function parseSave(
  text: string,
  owners: Map<string, string>,
  out: FirewallEntry[] = [],
): FirewallEntry[] {
  for (const line of text.split('\n')) {
    if (!line.startsWith('add ')) continue;
    const words = line.split(' ');
    const logical = owners.get(words[1]!);
    if (logical === undefined) continue;
    const ti = words.indexOf('timeout', 3);
    const secs = ti > 0 ? Number(words[ti + 1]) : 0;
    out.push({ target: parseTarget(words[2]!), set: logical, timeout: secs > 0 ? secs : null });
  }
  return out;
}

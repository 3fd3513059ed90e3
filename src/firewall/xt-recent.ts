import { readFileSync, writeFileSync } from 'node:fs';
import { isSingleHost, parseTarget, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { runTool, type ToolRunner } from './run-tool.js';
import { DEFAULT_SET } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry } from './types.js';

export interface XtRecentOptions extends ToolRunner {
  /** Logical set used when `add` names none; default `blocklist`. */
  defaultSet?: string;
  /** Logical set → xt_recent table (`--name`); a set not listed uses its own name. */
  targets?: Record<string, string>;
  /** Default `/proc/net/xt_recent`. */
  procDir?: string;
  logger?: Logger;
}

/**
 * The kernel takes ONE command per write() and only at file offset 0 (any later write on the same
 * descriptor fails with ESPIPE, and pwrite is not supported), so every line is its own
 * open/write/close. Runs inside the target namespace when a prefix is set: /proc/net is the
 * namespace of the process that opens it. Reports "LINE-NUMBER CODE" of the first failure.
 */
const WRITER = `
const fs = require('node:fs');
const file = process.argv[1];
const lines = fs.readFileSync(0, 'utf8').split('\\n').filter(Boolean);
for (let i = 0; i < lines.length; i++) {
  try { fs.writeFileSync(file, lines[i] + '\\n', { flag: 'w' }); }
  catch (e) { process.stderr.write((i + 1) + ' ' + e.code + '\\n'); process.exit(1); }
}
`;

function writeHere(file: string, lines: string[]): { line: number; code: string } | undefined {
  for (let i = 0; i < lines.length; i++) {
    try {
      writeFileSync(file, `${lines[i]}\n`, { flag: 'w' });
    } catch (e) {
      return { line: i + 1, code: (e as NodeJS.ErrnoException).code ?? 'EIO' };
    }
  }
  return undefined;
}

/**
 * xt_recent backend (banban's mechanism): `+addr` / `-addr` lines to
 * `/proc/net/xt_recent/TABLE`, one table per logical set. The table exists only while an
 * iptables/ip6tables rule uses `-m recent --name TABLE`; one table holds both families. xt_recent
 * has no per-element timeout (the rule's `--seconds` decides) and no ranges, and the module keeps
 * at most `ip_list_tot` entries per table (default 100), silently forgetting the oldest: use it for
 * banban compatibility, ipset or nftables for large ban lists. An unban removes the address from
 * every configured table.
 */
export class XtRecentFirewall implements Firewall {
  readonly name = 'xt_recent';
  private readonly opts: XtRecentOptions;
  private readonly procDir: string;
  private readonly defaultSet: string;
  /** table → (address text → '+' | '-'), latest intent per address. */
  private readonly staged = new Map<string, Map<string, '+' | '-'>>();
  /** The module's per-table limit (`ip_list_tot`), when readable. */
  private capacity: number | undefined;

  constructor(opts: XtRecentOptions = {}) {
    this.opts = opts;
    this.procDir = opts.procDir ?? '/proc/net/xt_recent';
    this.defaultSet = opts.defaultSet ?? DEFAULT_SET;
  }

  private table(set: string): string {
    const t = this.opts.targets?.[set] ?? set;
    if (!/^[\w.-]{1,200}$/.test(t))
      throw new RampartError('E_CONFIG', `xt_recent: "${t}" is not a valid table name`);
    return t;
  }

  /** Configured logical sets: the default one unless only `targets` is given. */
  private sets(): string[] {
    const own = this.opts.defaultSet !== undefined || !this.opts.targets ? [this.defaultSet] : [];
    return [...new Set([...own, ...Object.keys(this.opts.targets ?? {})])];
  }

  /** Every table an unban must reach. */
  private tables(): string[] {
    return [...new Set(this.sets().map((s) => this.table(s)))];
  }

  async init(): Promise<void> {
    try {
      this.capacity =
        Number(readFileSync('/sys/module/xt_recent/parameters/ip_list_tot', 'utf8').trim()) || undefined;
    } catch {}
    const missing: string[] = [];
    for (const t of this.tables()) {
      const r = await this.read(t).catch(() => undefined);
      if (r === undefined) missing.push(t);
    }
    // Not fatal at start: the operator's rules may be loaded after rampart; commit says it again.
    if (missing.length > 0)
      this.opts.logger?.warn(
        { tables: missing },
        'xt_recent tables missing: no -m recent --name rule uses them yet',
      );
  }

  add(target: Target, _timeout: DurationSeconds, set?: string): void {
    if (!isSingleHost(target)) {
      throw new RampartError(
        'E_FIREWALL',
        `xt_recent: cannot ban the range ${target.text}: xt_recent holds single addresses only (use the ipset or nftables backend for ranges)`,
      );
    }
    this.stage(this.table(set ?? this.defaultSet), target.text, '+');
  }

  delete(target: Target, set?: string): void {
    if (!isSingleHost(target)) return;
    const tables = set === undefined ? this.tables() : [this.table(set)];
    for (const t of tables) this.stage(t, target.text, '-');
  }

  private stage(table: string, addr: string, op: '+' | '-'): void {
    let m = this.staged.get(table);
    if (!m) {
      m = new Map();
      this.staged.set(table, m);
    }
    m.set(addr, op);
  }

  pending(): number {
    let n = 0;
    for (const m of this.staged.values()) n += m.size;
    return n;
  }

  async commit(): Promise<CommitResult> {
    const result = { added: 0, deleted: 0 };
    for (const [table, m] of [...this.staged]) {
      const entries = [...m];
      const lines = entries.map(([addr, op]) => `${op}${addr}`);
      this.warnIfOver(table, entries.filter(([, op]) => op === '+').length);
      const failure = await this.write(table, lines);
      // A table no rule uses holds nothing: unbanning from it has nothing to do.
      if (failure?.code === 'ENOENT' && entries.every(([, op]) => op === '-')) {
        for (const [addr, op] of entries) if (m.get(addr) === op) m.delete(addr);
        if (m.size === 0) this.staged.delete(table);
        continue;
      }
      if (failure) {
        // Lines before the failure are applied and idempotent: drop them, keep the rest staged.
        for (const [addr] of entries.slice(0, Math.max(0, failure.line - 1))) m.delete(addr);
        throw this.failure(table, failure, lines[failure.line - 1]);
      }
      for (const [addr, op] of entries) {
        if (m.get(addr) === op) m.delete(addr);
        if (op === '+') result.added++;
        else result.deleted++;
      }
      if (m.size === 0) this.staged.delete(table);
    }
    return result;
  }

  private async write(table: string, lines: string[]): Promise<{ line: number; code: string } | undefined> {
    const file = `${this.procDir}/${table}`;
    if (!this.opts.prefix?.length) return writeHere(file, lines);
    const r = await runTool(process.execPath, ['-e', WRITER, file], {
      ...this.opts,
      input: `${lines.join('\n')}\n`,
    });
    if (r.code === 0 && !r.spawnError) return undefined;
    const m = /^(\d+) (\w+)/m.exec(r.stderr);
    if (m) return { line: Number(m[1]), code: m[2]! };
    throw new RampartError(
      'E_FIREWALL',
      `xt_recent: could not run the writer for "${table}": ${r.spawnError?.message ?? r.stderr.trim()}`,
    );
  }

  private failure(table: string, f: { line: number; code: string }, line: string | undefined): RampartError {
    const file = `${this.procDir}/${table}`;
    if (f.code === 'ENOENT') {
      return new RampartError(
        'E_FIREWALL',
        `xt_recent: table "${table}" does not exist (${file} exists only while an iptables or ip6tables rule uses "-m recent --name ${table}"); add such a rule first`,
      );
    }
    if (f.code === 'EACCES' || f.code === 'EPERM') {
      return new RampartError('E_FIREWALL', `xt_recent: permission denied writing ${file} (needs root)`);
    }
    return new RampartError('E_FIREWALL', `xt_recent: table "${table}" refused "${line ?? '?'}" (${f.code})`);
  }

  private async read(table: string): Promise<string> {
    const file = `${this.procDir}/${table}`;
    const r = await runTool('cat', [file], this.opts);
    if (r.code !== 0 || r.spawnError) {
      throw this.failure(
        table,
        { line: 0, code: /No such file/.test(r.stderr) ? 'ENOENT' : 'EIO' },
        undefined,
      );
    }
    return r.stdout;
  }

  /** Reads the tables back; xt_recent keeps no timeout, so every entry reports null. */
  async list(set?: string): Promise<FirewallEntry[]> {
    const sets = set === undefined ? this.sets() : [set];
    const out: FirewallEntry[] = [];
    const seen = new Set<string>();
    for (const logical of sets) {
      const table = this.table(logical);
      if (seen.has(table)) continue;
      seen.add(table);
      let held = 0;
      for (const line of (await this.read(table)).split('\n')) {
        const m = /^src=(\S+)/.exec(line);
        if (!m) continue;
        out.push({ target: parseTarget(m[1]!), set: logical, timeout: null });
        held++;
      }
      this.warnIfOver(table, held);
    }
    return out;
  }

  /** At `ip_list_tot` entries the kernel silently drops the oldest: that loses bans, so say so. */
  private warnIfOver(table: string, count: number): void {
    if (this.capacity === undefined || count < this.capacity) return;
    this.opts.logger?.warn(
      { table, entries: count, ip_list_tot: this.capacity },
      'xt_recent table is full: the kernel forgets the oldest entries (raise the xt_recent ip_list_tot module parameter, or use ipset)',
    );
  }

  async shutdown(): Promise<void> {}
}

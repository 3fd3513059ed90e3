import { parseTarget, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { runTool, type ToolRunner } from './run-tool.js';
import { DEFAULT_SET } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry } from './types.js';

export interface Fail2banClientOptions extends ToolRunner {
  /** fail2ban's socket (`-s`); default: whatever fail2ban-client reads from fail2ban.conf. */
  socket?: string;
  /** The jail bans of the default set go to; default `blocklist`. */
  jail?: string;
  /** Logical set → jail; a set not listed goes to the jail of the same name. */
  jails?: Record<string, string>;
  /** The fail2ban-client program; default `fail2ban-client`. */
  program?: string;
  /** Addresses per banip/unbanip call (keeps argv bounded); default 500. */
  chunk?: number;
  logger?: Logger;
}

/**
 * Pushes bans into a running fail2ban: `fail2ban-client set JAIL banip ADDR...` / `unbanip`,
 * several addresses per call, one call per jail and direction in each commit. fail2ban decides
 * the ban time (the jail's `bantime`, with its increment rules): `banip` takes no duration, so the
 * timeout given to `add` is not passed on. fail2ban accepts CIDR ranges as well as addresses.
 */
export class Fail2banClientFirewall implements Firewall {
  readonly name = 'fail2ban-client';
  private readonly opts: Fail2banClientOptions;
  /** `${set}\0${text}` → op; the latest intent per element wins. */
  private readonly staged = new Map<string, { set: string; target: Target; ban: boolean }>();

  constructor(opts: Fail2banClientOptions = {}) {
    this.opts = opts;
  }

  private jailOf(set: string): string {
    const jail = this.opts.jails?.[set] ?? (set === DEFAULT_SET ? this.opts.jail : undefined) ?? set;
    if (!/^[\w.@+-]{1,100}$/.test(jail))
      throw new RampartError('E_CONFIG', `fail2ban-client: "${jail}" is not a valid jail name`);
    return jail;
  }

  private async client(args: string[], what: string): Promise<string> {
    const socket = this.opts.socket ? ['-s', this.opts.socket] : [];
    const r = await runTool(this.opts.program ?? 'fail2ban-client', [...socket, ...args], this.opts);
    if (r.code === 0 && !r.spawnError) return r.stdout;
    let why = (r.stderr.trim().split('\n').pop() ?? '').replace(/^.*?(ERROR|WARNING)\s+/, '');
    if (r.spawnError?.code === 'ENOENT') why = 'the fail2ban-client program was not found (install fail2ban)';
    else if (/Failed to access socket path/.test(r.stderr)) {
      why = `cannot reach fail2ban at ${this.opts.socket ?? 'its default socket'}: is fail2ban-server running?`;
    } else if (
      /Sorry but the jail '.*' does not exist/.test(r.stdout + r.stderr) ||
      /NOK: \('.*',\)/.test(why)
    ) {
      why = 'no such jail (fail2ban-client status lists them)';
    } else if (!why) why = r.stdout.trim() || `exit code ${r.code}`;
    throw new RampartError('E_FIREWALL', `fail2ban-client: ${what}: ${why}`);
  }

  /** Logical sets this backend is configured for: the default one unless only `jails` is given. */
  private sets(): string[] {
    const own = this.opts.jail !== undefined || !this.opts.jails ? [DEFAULT_SET] : [];
    return [...new Set([...own, ...Object.keys(this.opts.jails ?? {})])];
  }

  /** Checks that fail2ban answers and that every configured jail exists. */
  async init(): Promise<void> {
    for (const set of this.sets())
      await this.client(['status', this.jailOf(set)], `jail "${this.jailOf(set)}"`);
  }

  add(target: Target, _timeout: DurationSeconds, set = DEFAULT_SET): void {
    this.stage(set, target, true);
  }

  delete(target: Target, set = DEFAULT_SET): void {
    this.stage(set, target, false);
  }

  private stage(set: string, target: Target, ban: boolean): void {
    this.jailOf(set);
    this.staged.set(`${set}\0${target.text}`, { set, target, ban });
  }

  pending(): number {
    return this.staged.size;
  }

  async commit(): Promise<CommitResult> {
    const batch = [...this.staged];
    type Staged = { set: string; target: Target; ban: boolean };
    const groups = new Map<
      string,
      { jail: string; ban: boolean; items: Array<[string, Staged]>; addrs: string[] }
    >();
    for (const [key, s] of batch) {
      const jail = this.jailOf(s.set);
      const g = `${jail}\0${s.ban}`;
      let group = groups.get(g);
      if (!group) {
        group = { jail, ban: s.ban, items: [], addrs: [] };
        groups.set(g, group);
      }
      group.items.push([key, s]);
      group.addrs.push(s.target.text);
    }
    const result = { added: 0, deleted: 0 };
    const size = this.opts.chunk ?? 500;
    for (const g of groups.values()) {
      for (let i = 0; i < g.addrs.length; i += size) {
        const addrs = g.addrs.slice(i, i + size);
        const verb = g.ban ? 'banip' : 'unbanip';
        await this.client(
          ['set', g.jail, verb, ...addrs],
          `${verb} ${addrs[0]}${addrs.length > 1 ? ` (+${addrs.length - 1})` : ''} in jail "${g.jail}"`,
        );
        // Applied calls are done: a later failure must not resend them, nor lose the rest.
        for (const [key, entry] of g.items.slice(i, i + size)) {
          if (this.staged.get(key) === entry) this.staged.delete(key);
        }
        if (g.ban) result.added += addrs.length;
        else result.deleted += addrs.length;
      }
    }
    return result;
  }

  /** The jail's banned addresses with their remaining time (`get JAIL banip --with-time`). */
  async list(set?: string): Promise<FirewallEntry[]> {
    const sets = set !== undefined ? [set] : this.sets();
    const out: FirewallEntry[] = [];
    const now = Date.now();
    for (const s of sets) {
      const jail = this.jailOf(s);
      const text = await this.client(['get', jail, 'banip', '--with-time'], `listing jail "${jail}"`);
      out.push(...parseBanipWithTime(text, s, now));
    }
    return out;
  }

  async shutdown(): Promise<void> {}
}

/**
 * Parses `get JAIL banip --with-time` lines: `ADDR \tYYYY-MM-DD HH:MM:SS + BANTIME = END` (local
 * time, as fail2ban prints it); a bantime of -1 is permanent.
 */
export function parseBanipWithTime(text: string, set: string, now = Date.now()): FirewallEntry[] {
  const out: FirewallEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+\S+ \S+ \+ (-?\d+) = (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)/.exec(line);
    if (!m) continue;
    const end = new Date(`${m[3]}T${m[4]}`).getTime();
    const timeout = Number(m[2]) < 0 ? null : Math.max(0, Math.round((end - now) / 1000));
    out.push({ target: parseTarget(m[1]!), set, timeout });
  }
  return out;
}

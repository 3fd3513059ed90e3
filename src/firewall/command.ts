import { type Fail2banConfig, readFail2banConfig } from '../compat/fail2ban-ini.js';
import { isSingleHost, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DATA_TAGS, expandTags, placeDataTags } from './command-tags.js';
import { runTool, type ToolRunner } from './run-tool.js';
import { DEFAULT_SET } from './staging.js';
import type { CommitResult, Firewall, FirewallEntry } from './types.js';

export interface CommandActionOptions extends ToolRunner {
  /** The fail2ban `action.d` file (its `[INCLUDES]` and `.local` are read too). */
  file: string;
  /** Overrides of the file's [Init] values, like fail2ban's `action = name[port=ssh]`: trusted config. */
  init?: Record<string, string>;
  /** The `<name>` tag; default: the ban's logical set name. Passed as data, never as code. */
  name?: string;
  /** Run `actionstop` at shutdown, as fail2ban does when a jail stops; default true. */
  stopOnShutdown?: boolean;
  /** Bans per shell process in a commit; default 500. */
  chunk?: number;
  logger?: Logger;
}

type Family = 'inet4' | 'inet6';
/** Well under Linux's 128 KiB limit for one argv string. */
const SCRIPT_LIMIT = 96 * 1024;
type Action = 'actionstart' | 'actionstop' | 'actioncheck' | 'actionban' | 'actionunban';

interface Applied {
  target: Target;
  set: string;
  /** ms since epoch; null = permanent. */
  until: number | null;
  timer?: NodeJS.Timeout;
}

interface Op {
  key: string;
  target: Target;
  set: string;
  /** undefined = unban. */
  timeout: DurationSeconds | undefined;
}

const familyOf = (t: Target): Family => (t.family === 4 ? 'inet4' : 'inet6');

/**
 * Runs a fail2ban `action.d` file: `actionstart` on demand before the first ban of each family,
 * `actionban`/`actionunban` per address, `actionstop` at shutdown. Tags from the file and the
 * operator's `init` overrides are expanded as text (they are the action's code, as in fail2ban);
 * the ban's own tags (`<ip>`, `<name>`, `<bantime>`, `<family>`, `<fid>`, `<ip-rev>`, `<time>`)
 * reach the shell only as positional parameters, so a value such as `$(touch x)` stays data
 * (net2ban substituted them into the shell text). Each commit runs all its bans in one shell per
 * `chunk`. The action cannot expire bans by itself, so this backend unbans each one when its time
 * is up (while rampart runs) and `list()` reports what it applied.
 */
export class CommandFirewall implements Firewall {
  readonly name: string;
  private readonly opts: CommandActionOptions;
  private config: Fail2banConfig | undefined;
  /** `${family}\0${set}` → what actionstart ran for (each `<name>` has its own chains/sets). */
  private readonly started = new Map<string, { family: Family; set: string }>();
  private readonly staged = new Map<string, Op>();
  private readonly applied = new Map<string, Applied>();
  private closed = false;

  constructor(opts: CommandActionOptions) {
    this.opts = opts;
    this.name = `command:${opts.file.replace(/^.*\//, '').replace(/\.conf$/, '')}`;
  }

  private cfg(): Fail2banConfig {
    if (!this.config) {
      this.config = readFail2banConfig(this.opts.file);
      if (!this.config.hasSection('Definition')) {
        throw new RampartError(
          'E_CONFIG',
          `${this.opts.file}: no [Definition] section: not a fail2ban action file`,
        );
      }
    }
    return this.config;
  }

  /** Reads and checks the action file; `actionstart` runs on demand with the first ban. */
  async init(): Promise<void> {
    this.closed = false;
    const cfg = this.cfg();
    if (!cfg.get('Definition', 'actionban')) {
      throw new RampartError('E_CONFIG', `${this.opts.file}: [Definition] has no actionban`);
    }
  }

  /**
   * Builds the shell text of one action for one family and the values of its data tags.
   * Returns undefined when the file leaves the action empty (nothing to run).
   */
  private script(action: Action, family: Family, set: string, target?: Target, timeout?: DurationSeconds) {
    const cfg = this.cfg();
    const raw = cfg.get('Definition', action);
    if (!raw?.trim()) return undefined;
    const init = Object.fromEntries(
      Object.entries(this.opts.init ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    );
    const data = new Set<string>(DATA_TAGS);
    const text = expandTags(raw, { config: cfg, family, init, data }, { file: this.opts.file, key: action });
    const values: Record<string, string> = {
      name: this.opts.name ?? set,
      family,
      time: String(Math.floor(Date.now() / 1000)),
      bantime: timeout === undefined ? '' : timeout === null ? '-1' : String(timeout),
      ip: target?.text ?? '',
      fid: target?.text ?? '',
      'ip-rev': target ? reverse(target) : '',
    };
    return { text, values };
  }

  private async ensureStarted(family: Family, set: string): Promise<void> {
    const key = `${family}\0${set}`;
    if (this.started.has(key)) return;
    const s = this.script('actionstart', family, set);
    if (s) await this.runOne(s, `actionstart (${family})`);
    this.started.set(key, { family, set });
  }

  private async runOne(s: { text: string; values: Record<string, string> }, what: string): Promise<void> {
    const { body, params } = bindParams(s, 0);
    const r = await runTool('sh', ['-c', body, 'sh', ...params], this.opts);
    if (r.code !== 0 || r.spawnError) {
      throw new RampartError(
        'E_FIREWALL',
        `command ${this.opts.file}: ${what} failed (exit ${r.code}): ${r.spawnError?.message ?? r.stderr.trim()}`,
      );
    }
  }

  add(target: Target, timeout: DurationSeconds, set = DEFAULT_SET): void {
    const key = `${set}\0${target.text}`;
    this.staged.set(key, { key, target, set, timeout });
  }

  delete(target: Target, set = DEFAULT_SET): void {
    const key = `${set}\0${target.text}`;
    this.staged.set(key, { key, target, set, timeout: undefined });
  }

  pending(): number {
    return this.staged.size;
  }

  async commit(): Promise<CommitResult> {
    const result = { added: 0, deleted: 0 };
    const ops: Op[] = [];
    for (const op of this.staged.values()) {
      const known = this.applied.get(op.key);
      // Like fail2ban, an address already banned is not banned again (a second actionban would
      // leave a duplicate rule behind after one unban); only its end time moves.
      if (op.timeout !== undefined && known) {
        this.staged.delete(op.key);
        this.record(op);
        result.added++;
      } else {
        ops.push(op);
      }
    }
    if (ops.length === 0) return result;
    for (const op of ops) if (op.timeout !== undefined) await this.ensureStarted(familyOf(op.target), op.set);
    const size = this.opts.chunk ?? 500;
    let firstError: RampartError | undefined;
    for (let i = 0; i < ops.length; i += size) {
      const chunk = ops.slice(i, i + size);
      const failed = await this.runBatch(chunk);
      for (const [k, op] of chunk.entries()) {
        const err = failed.get(k);
        if (err) {
          firstError ??= new RampartError(
            'E_FIREWALL',
            `command ${this.opts.file}: ${op.timeout === undefined ? 'actionunban' : 'actionban'} for ${op.target.text} (set "${op.set}") failed: ${err}`,
          );
          continue;
        }
        if (this.staged.get(op.key) === op) this.staged.delete(op.key);
        this.record(op);
        if (op.timeout === undefined) result.deleted++;
        else result.added++;
      }
    }
    if (firstError) throw firstError;
    return result;
  }

  /**
   * Runs several actions in one shell, each in its own subshell so one failure (or an `exit`)
   * does not stop the rest; markers on stderr attribute output and exit codes to each op.
   */
  private async runBatch(ops: Op[]): Promise<Map<number, string>> {
    const failed = new Map<number, string>();
    let parts: string[] = [];
    let params: string[] = [];
    let ks: number[] = [];
    let size = 0;
    for (const [k, op] of ops.entries()) {
      const action: Action = op.timeout === undefined ? 'actionunban' : 'actionban';
      const s = this.script(action, familyOf(op.target), op.set, op.target, op.timeout);
      if (!s) continue;
      const build = (base: number) => {
        const { body, params: local } = bindParams(s, base);
        const part = `printf '\\n@@rampart %d\\n' ${k} >&2\n(\n${body}\n) || printf '\\n@@rampart-failed %d %d\\n' ${k} "$?" >&2`;
        return { part, local };
      };
      let built = build(params.length);
      // One argv string may hold at most 128 KiB (MAX_ARG_STRLEN): start another shell before.
      if (parts.length > 0 && size + built.part.length > SCRIPT_LIMIT) {
        await this.runShell(parts, params, ks, failed);
        parts = [];
        params = [];
        ks = [];
        size = 0;
        built = build(0);
      }
      parts.push(built.part);
      params.push(...built.local);
      ks.push(k);
      size += built.part.length + 1;
    }
    if (parts.length > 0) await this.runShell(parts, params, ks, failed);
    return failed;
  }

  /** Runs one shell of the batch and records, per op index in `ks`, why it failed. */
  private async runShell(
    parts: string[],
    params: string[],
    ks: number[],
    failed: Map<number, string>,
  ): Promise<void> {
    const r = await runTool('sh', ['-c', parts.join('\n'), 'sh', ...params], this.opts);
    if (r.spawnError) {
      throw new RampartError(
        'E_FIREWALL',
        `command ${this.opts.file}: cannot run sh: ${r.spawnError.message}`,
      );
    }
    const output = new Map<number, string>();
    const started = new Set<number>();
    let cur = -1;
    for (const line of r.stderr.split('\n')) {
      const start = /^@@rampart (\d+)$/.exec(line);
      const fail = /^@@rampart-failed (\d+) (\d+)$/.exec(line);
      if (start) {
        cur = Number(start[1]);
        started.add(cur);
      } else if (fail) {
        const k = Number(fail[1]);
        failed.set(k, `exit ${fail[2]}: ${(output.get(k) ?? '').trim() || 'no output'}`);
      } else if (cur >= 0 && line) output.set(cur, `${output.get(cur) ?? ''}${line}\n`);
    }
    if (r.code !== 0) {
      // Killed (timeout) or the shell itself failed: whatever did not finish is not applied.
      const why = r.code === null ? 'timed out' : `the shell failed (exit ${r.code})`;
      for (const k of ks) if (!failed.has(k) && (!started.has(k) || k === cur)) failed.set(k, why);
    }
  }

  private record(op: Op): void {
    const old = this.applied.get(op.key);
    if (old?.timer) clearTimeout(old.timer);
    if (op.timeout === undefined) {
      this.applied.delete(op.key);
      return;
    }
    const entry: Applied = {
      target: op.target,
      set: op.set,
      until: op.timeout === null ? null : Date.now() + op.timeout * 1000,
    };
    if (op.timeout !== null) {
      // The action has no timeout of its own: lift the ban when its time is up.
      entry.timer = setTimeout(() => {
        if (this.closed || this.applied.get(op.key) !== entry) return;
        this.delete(op.target, op.set);
        this.commit().catch((err) =>
          this.opts.logger?.warn({ err, target: op.target.text }, 'command action: expiry unban failed'),
        );
      }, op.timeout * 1000);
      entry.timer.unref();
    }
    this.applied.set(op.key, entry);
  }

  /** What this backend applied and has not lifted (an action file cannot be read back). */
  async list(set?: string): Promise<FirewallEntry[]> {
    const now = Date.now();
    return [...this.applied.values()]
      .filter((a) => set === undefined || a.set === set)
      .map((a) => ({
        target: a.target,
        set: a.set,
        timeout: a.until === null ? null : Math.max(0, Math.ceil((a.until - now) / 1000)),
      }));
  }

  /** Runs `actioncheck` for a family; throws with the action's output when it fails. */
  async check(family: Family = 'inet4', set = DEFAULT_SET): Promise<void> {
    const s = this.script('actioncheck', family, set);
    if (s) await this.runOne(s, `actioncheck (${family})`);
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    for (const a of this.applied.values()) if (a.timer) clearTimeout(a.timer);
    if (this.opts.stopOnShutdown === false) return;
    for (const [key, { family, set }] of [...this.started]) {
      const s = this.script('actionstop', family, set);
      if (s) await this.runOne(s, `actionstop (${family})`);
      this.started.delete(key);
    }
    this.applied.clear();
  }
}

/**
 * Turns the data tags of a script into positional parameters numbered from `base + 1` (one per
 * distinct tag) and returns the shell text with the values to pass after it.
 */
export function bindParams(s: { text: string; values: Record<string, string> }, base: number) {
  const params: string[] = [];
  const index = new Map<string, number>();
  const body = placeDataTags(s.text, (name) => {
    let n = index.get(name);
    if (n === undefined) {
      params.push(s.values[name] ?? '');
      n = base + params.length;
      index.set(name, n);
    }
    return n;
  });
  return { body, params };
}

/** fail2ban's `<ip-rev>`: the reverse-DNS form (`4.3.2.1.` for 1.2.3.4), addresses only. */
function reverse(t: Target): string {
  if (!isSingleHost(t)) return '';
  if (t.family === 4) return `${t.text.split('.').reverse().join('.')}.`;
  const hex = t.first.toString(16).padStart(32, '0');
  return `${hex.split('').reverse().join('.')}.`;
}

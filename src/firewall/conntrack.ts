import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIPv4, formatIPv6, isSingleHost, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { runTool, type ToolRunner } from './run-tool.js';
import type { CommitResult, Firewall, FirewallEntry } from './types.js';

export interface ConntrackOptions extends ToolRunner {
  /** The conntrack program (conntrack-tools 1.4.6 or later, for `-R`); default `conntrack`. */
  program?: string;
  /**
   * Which flows of a banned address to drop: `src`, where it opened the connection (the attacker
   * connected to us: the usual case, and banban's `conntrack -D -s`), and optionally `dst`, where
   * this host connected to it. Default `['src']`.
   */
  directions?: Array<'src' | 'dst'>;
}

function mask(t: Target): string {
  const bits = t.family === 4 ? 32 : 128;
  const all = (1n << BigInt(bits)) - 1n;
  const m = all ^ ((1n << BigInt(bits - t.prefix)) - 1n);
  return t.family === 4 ? formatIPv4(Number(m)) : formatIPv6(m);
}

/** One `conntrack -R` line per direction; a range becomes address + mask. */
export function conntrackLines(t: Target, directions: Array<'src' | 'dst'>): string[] {
  const addr = t.text.split('/')[0]!;
  return directions.map((d) => {
    const flag = d === 'src' ? '-s' : '-d';
    return isSingleHost(t) ? `-D ${flag} ${addr}` : `-D ${flag} ${addr} --mask-${d} ${mask(t)}`;
  });
}

/**
 * Drops the existing connections of banned addresses, so an attacker who is already connected is
 * cut off (a ruleset that accepts `ct state established` first would otherwise let them stay).
 * It holds no state of its own: `add` stages a flush, `delete` cancels one not yet done, `list`
 * is empty. Meant to run after another backend has put the ban in place: see
 * {@link withConntrack}. All flushes of a commit go through one `conntrack -R` process; finding
 * no entries is not an error.
 */
export class ConntrackFlusher implements Firewall {
  readonly name = 'conntrack';
  private readonly opts: ConntrackOptions;
  private readonly staged = new Map<string, Target>();

  constructor(opts: ConntrackOptions = {}) {
    this.opts = opts;
  }

  async init(): Promise<void> {}

  add(target: Target, _timeout: DurationSeconds): void {
    this.staged.set(target.text, target);
  }

  delete(target: Target): void {
    this.staged.delete(target.text);
  }

  pending(): number {
    return this.staged.size;
  }

  async commit(): Promise<CommitResult> {
    if (this.staged.size === 0) return { added: 0, deleted: 0 };
    const batch = [...this.staged.values()];
    const directions = this.opts.directions ?? ['src'];
    const input = `${batch.flatMap((t) => conntrackLines(t, directions)).join('\n')}\n`;
    const program = this.opts.program ?? 'conntrack';
    // -R reads commands from a file: Node's child stdin is a socket, which /dev/stdin cannot
    // open, so the batch goes through a private temp file (the namespace shares the filesystem).
    const dir = await mkdtemp(join(tmpdir(), 'rampart-conntrack-'));
    const file = join(dir, 'batch');
    const r = await writeFile(file, input, { mode: 0o600 })
      .then(() => runTool(program, ['-R', file], this.opts))
      .finally(() => rm(dir, { recursive: true, force: true }));
    if (r.code !== 0 || r.spawnError) {
      const msg =
        r.spawnError?.code === 'ENOENT'
          ? 'the conntrack program was not found (install conntrack)'
          : r.stderr.trim() || `exit code ${r.code}`;
      throw new RampartError(
        'E_FIREWALL',
        `conntrack: dropping connections of ${batch.length} address(es) (first ${batch[0]!.text}) failed: ${msg.replace(/^conntrack v[\d.]+ \(conntrack-tools\): /, '')}`,
      );
    }
    for (const t of batch) if (this.staged.get(t.text) === t) this.staged.delete(t.text);
    return { added: batch.length, deleted: 0 };
  }

  async list(): Promise<FirewallEntry[]> {
    return [];
  }

  async shutdown(): Promise<void> {}
}

/**
 * Wraps a backend so that every ban it commits is followed by a connection flush: the ban is in
 * place first (so the attacker cannot reconnect in between), then its flows are dropped. A failed
 * flush is logged, never fails the commit: the ban itself is applied, and the flush is retried
 * with the next commit.
 */
export function withConntrack(primary: Firewall, flusher: Firewall, log?: Logger): Firewall {
  return {
    name: `${primary.name}+conntrack`,
    async init() {
      await primary.init();
      await flusher.init();
    },
    add(target, timeout, set) {
      primary.add(target, timeout, set);
      flusher.add(target, timeout, set);
    },
    delete(target, set) {
      primary.delete(target, set);
      flusher.delete(target, set);
    },
    // A flush left over from a failed attempt still needs a commit.
    pending: () => Math.max(primary.pending(), flusher.pending()),
    async commit() {
      const result = await primary.commit();
      try {
        await flusher.commit();
      } catch (err) {
        log?.warn({ err }, 'conntrack flush after ban failed; will retry with the next commit');
      }
      return result;
    },
    list: (set) => primary.list(set),
    async shutdown() {
      await primary.shutdown();
      await flusher.shutdown();
    },
  };
}

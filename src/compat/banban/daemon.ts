import type { Target } from '../../core/address.js';
import { parseTarget } from '../../core/address.js';
import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { Engine } from '../../detect/engine.js';
import type { RuleSpec } from '../../detect/rule.js';
import type { LogLine } from '../../detect/types.js';
import { ConntrackFlusher } from '../../firewall/conntrack.js';
import { createFirewall } from '../../firewall/create.js';
import type { Firewall } from '../../firewall/types.js';
import { SyslogSource } from '../../sources/syslog.js';
import { loadBanbanConfig } from '../banban-config.js';

const SOURCE = 'syslog:unix';

export interface BanbanDaemonOptions {
  config: string;
  /** `-s`: log what would be written, write nothing. */
  simulate: boolean;
  logger: Logger;
  /** Socket file mode; default 0o660 (banban's own, under the usual umask, was root-only). */
  socketMode?: number;
  /** The conntrack program (tests). */
  conntrack?: string;
}

type Op = { op: '+' | '-'; target: Target; table?: string; resetconns?: boolean };

/**
 * `rampart banban`: banban's YAML, its UNIX datagram socket and its xt_recent writes, on
 * rampart's layers: the syslog source owns the socket (one datagram = one line, `<PRI>` and the
 * RFC 3164 header read as rsyslog's omuxsock and syslog-ng's unix-dgram send them), the detection
 * engine counts `minocc` hits within `interval` per blocktype (no 10-hit cap), and the xt_recent
 * and conntrack backends write `+ip`/`-ip` and run `conntrack -D -s`.
 */
export class BanbanDaemon {
  private rules: RuleSpec[] = [];
  private engine: Engine | undefined;
  private source: SyslogSource | undefined;
  private fw: Firewall | undefined;
  private readonly conntrack: ConntrackFlusher;
  private tables: string[] = [];
  /** Addresses this run blocked, per blocktype: a further hit re-writes `+ip`, as banban does. */
  private readonly blocked = new Map<string, Set<string>>();
  private queue: Op[] = [];
  private running: Promise<void> | undefined;
  socket = '';

  constructor(private readonly o: BanbanDaemonOptions) {
    this.conntrack = new ConntrackFlusher(o.conntrack ? { program: o.conntrack } : {});
  }

  /** Reads the YAML (again on SIGHUP); a bad file keeps the running configuration. */
  load(): void {
    const cfg = loadBanbanConfig(this.o.config, { sources: [SOURCE] });
    if (!cfg.socket)
      throw new ConfigError('socket: the datagram socket path is missing', {
        file: this.o.config,
        key: 'socket',
      });
    if (this.socket && cfg.socket !== this.socket) {
      this.o.logger.warn(
        { socket: cfg.socket, kept: this.socket },
        'socket changed: takes effect at restart',
      );
    } else this.socket = cfg.socket;
    this.rules = cfg.rules;
    this.tables = [...new Set(cfg.rules.map((r) => r.set!))];
    this.engine = new Engine(cfg.rules, {
      clock: 'wall',
      linear: 'prefer',
      onMatch: (m) => this.matches.push(m),
      onWarning: (message) => this.o.logger.warn({ message }, 'rule warning'),
    });
    this.fw = this.makeFirewall();
    this.o.logger.info({ config: this.o.config, blocktypes: cfg.rules.map((r) => r.name) }, 'read config');
  }

  private matches: Array<{ rule: string; ip: string; kind: 'fail' | 'good' }> = [];

  private makeFirewall(): Firewall {
    const targets = Object.fromEntries(this.tables.map((t) => [t, t]));
    return createFirewall({ backend: 'xt_recent', xt_recent: { targets } }, { logger: this.o.logger });
  }

  async start(): Promise<void> {
    this.load();
    this.source = new SyslogSource({
      unix: { path: this.socket, mode: this.o.socketMode ?? 0o660 },
      maxMessageBytes: 4096,
      logger: this.o.logger,
      name: 'banban',
    });
    await this.source.start((line) => this.onLine(line));
    this.o.logger.info({ socket: this.socket }, 'starting to read from socket');
  }

  reload(): void {
    try {
      this.load();
      this.blocked.clear();
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message },
        'reload failed; keeping the running configuration',
      );
    }
  }

  private onLine(line: LogLine): void {
    const log = this.o.logger;
    log.debug({ line: line.text }, 'checking line');
    this.matches = [];
    const events = this.engine!.feed(line);
    const matches = this.matches;
    const ops: Op[] = [];
    // A good pattern unblocks from every target and forgets the history, whatever this run knew.
    const good = matches.find((m) => m.kind === 'good');
    if (good) {
      const target = parseTarget(good.ip);
      if (!this.ignored(target)) {
        log.info({ ip: target.text }, 'unblocking ip');
        for (const set of this.blocked.values()) set.delete(target.text);
        ops.push({ op: '-', target });
      }
    }
    for (const ev of events) {
      if (ev.type !== 'ban') continue;
      const rule = this.rules.find((r) => r.name === ev.rule)!;
      log.info({ ip: ev.target.text, offense: ev.hits, blocktype: ev.rule }, 'blocking ip');
      const set = this.blocked.get(ev.rule) ?? new Set<string>();
      this.blocked.set(ev.rule, set);
      set.add(ev.target.text);
      ops.push({ op: '+', target: ev.target, table: ev.set, resetconns: rule.resetConnections === true });
    }
    for (const m of matches) {
      if (m.kind !== 'fail' || events.some((e) => e.rule === m.rule)) continue;
      if (!this.blocked.get(m.rule)?.has(m.ip)) continue;
      const rule = this.rules.find((r) => r.name === m.rule)!;
      ops.push({
        op: '+',
        target: parseTarget(m.ip),
        table: rule.set!,
        resetconns: rule.resetConnections === true,
      });
    }
    if (ops.length === 0) return;
    this.queue.push(...ops);
    this.running ??= this.drain();
  }

  private ignored(t: Target): boolean {
    const nets = this.rules[0]?.ignoreNets ?? [];
    return nets.some((n) => {
      const r = parseTarget(n);
      return r.family === t.family && t.first >= r.first && t.last <= r.last;
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const op = this.queue.shift()!;
      await this.apply(op);
    }
    this.running = undefined;
  }

  /** One write at a time: a table that refuses (no rule uses it) loses that write only. */
  private async apply(op: Op): Promise<void> {
    const log = this.o.logger;
    const where = op.op === '-' ? this.tables : [op.table!];
    if (this.o.simulate) {
      log.info({ write: `${op.op}${op.target.text}`, tables: where }, 'simulate: not written');
      return;
    }
    const fw = this.fw!;
    if (op.op === '+') fw.add(op.target, null, op.table);
    else fw.delete(op.target);
    try {
      await fw.commit();
    } catch (err) {
      log.error(
        { write: `${op.op}${op.target.text}`, err: (err as Error).message },
        'xt_recent write failed',
      );
      // The backend would retry the write with every later commit; banban drops it.
      this.fw = this.makeFirewall();
      return;
    }
    if (op.op === '+' && op.resetconns) {
      this.conntrack.add(op.target, null);
      await this.conntrack.commit().catch((err: Error) => {
        this.conntrack.delete(op.target);
        log.warn({ ip: op.target.text, err: err.message }, 'conntrack -D failed');
      });
    }
  }

  /** Resolves when every line received so far has been written (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  async close(): Promise<void> {
    await this.source?.stop();
    await this.idle();
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { LogLine } from '../detect/types.js';
import { decodeUtf8, LineSplitter } from './line-splitter.js';
import { escapeControls, traditionalTime } from './syslog-parse.js';
import type { PositionStore, Source } from './types.js';

export interface JournaldSourceOptions {
  /** systemd units (`-u`), e.g. `ssh.service`. */
  units?: string[];
  /** Raw journalctl matches, e.g. `SYSLOG_IDENTIFIER=sshd`, `_TRANSPORT=syslog`, `+`. */
  matches?: string[];
  /** Read these journal files instead of the system journal (`--file`). */
  files?: string[];
  /** Read the journal in this directory (`--directory`). */
  directory?: string;
  /** Without a stored cursor, read what the journal already holds; default: only new entries. */
  fromStart?: boolean;
  positions?: PositionStore;
  /**
   * PositionStore key; default `journald` + units, matches, files and directory joined by `:`, so
   * two journald sources do not share a cursor.
   */
  positionKey?: string;
  journalctl?: string;
  /** Wait before restarting a journalctl that exited. Default 1000 ms. */
  restartMs?: number;
  logger?: Logger;
  name?: string;
  /**
   * `LogLine.source` of its lines (default `journald`): a source started for one fail2ban jail's
   * `journalmatch` labels its lines so only that jail's rule reads them.
   */
  label?: string;
}

const FIELDS = 'MESSAGE,SYSLOG_IDENTIFIER,_COMM,_PID,SYSLOG_PID,_HOSTNAME';

// journalctl prints a binary field as an array of byte values, a multi-valued field as an array.
type JournalValue = string | number[] | null | Array<string | number[] | null>;

/**
 * Follows the journal through `journalctl -o json -f`, resuming after the stored `__CURSOR`. Each
 * entry becomes `Mmm dd hh:mm:ss host ident[pid]: message` with `time` from
 * `__REALTIME_TIMESTAMP`, the shape the same message has in a syslog file.
 */
export class JournaldSource implements Source {
  readonly name: string;
  private child: ChildProcess | undefined;
  private stopped = true;
  private cursor: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly key: string;

  constructor(private readonly o: JournaldSourceOptions) {
    this.name = o.name ?? 'journald';
    this.log = o.logger ?? silentLogger();
    const what = [...(o.units ?? []), ...(o.matches ?? []), ...(o.files ?? []), o.directory ?? ''];
    this.key = o.positionKey ?? ['journald', ...what.filter((x) => x !== '')].join(':');
  }

  async start(onLine: (line: LogLine) => void): Promise<void> {
    this.stopped = false;
    this.cursor = this.o.positions?.get(this.key);
    await this.spawn(onLine, true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }

  /** The journalctl arguments for the current cursor (exported for tests and `--dry-run` output). */
  args(): string[] {
    // Only the fields we map (journalctl always adds __CURSOR and the timestamps): a full entry
    // has dozens, and parsing them would dominate the cost.
    const a = ['-o', 'json', `--output-fields=${FIELDS}`, '--follow', '--no-pager', '--all', '--quiet'];
    // Absolute paths: journalctl cannot follow a journal file given by a relative path.
    for (const f of this.o.files ?? []) a.push(`--file=${resolve(f)}`);
    if (this.o.directory) a.push(`--directory=${resolve(this.o.directory)}`);
    for (const u of this.o.units ?? []) a.push(`--unit=${u}`);
    if (this.cursor) a.push(`--after-cursor=${this.cursor}`);
    else a.push(this.o.fromStart ? '--no-tail' : '--lines=0');
    // Matches go last: journalctl reads every remaining argument as a match.
    return [...a, ...(this.o.matches ?? [])];
  }

  private spawn(onLine: (line: LogLine) => void, first: boolean): Promise<void> {
    const child = spawn(this.o.journalctl ?? 'journalctl', this.args(), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // JSON of one entry: a 1 MiB message as a byte array is about 4 MiB of text.
    const splitter = new LineSplitter(16 * 1024 * 1024);
    child.stdout!.on('data', (chunk: Buffer) =>
      splitter.push(chunk, (json, truncated) => {
        if (truncated) this.log.warn('journal entry larger than 16 MiB: skipped');
        else this.entry(json, onLine);
      }),
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      // journalctl has no "ready" signal: a bad option or file shows up as an early exit.
      const timer = setTimeout(() => settle(), first ? 300 : 0);
      const failed = (why: string) => {
        if (this.child !== child || this.stopped) return;
        if (this.cursor && /cursor/i.test(why)) {
          // A stored cursor journalctl refuses (corrupt, or from another journal): start over
          // the way a first start does rather than fail forever.
          this.log.warn({ why, cursor: this.cursor }, 'journald: stored cursor refused; ignoring it');
          this.cursor = undefined;
          if (first && !settled) {
            settled = true;
            clearTimeout(timer);
            this.spawn(onLine, true).then(resolve, reject);
            return;
          }
        }
        if (first && !settled) {
          this.child = undefined;
          settle(new RampartError('E_SOURCE', `journald: journalctl failed: ${why}`));
          return;
        }
        this.log.error({ why }, 'journalctl exited; restarting after the last cursor');
        this.child = undefined;
        this.restartTimer = setTimeout(() => {
          if (!this.stopped) void this.spawn(onLine, false);
        }, this.o.restartMs ?? 1000);
      };
      child.once('error', (err) => failed(`cannot run journalctl: ${err.message}`));
      child.once('exit', (code, signal) => failed(stderr.trim().split('\n')[0] || `exit ${code ?? signal}`));
    });
  }

  private entry(json: string, onLine: (line: LogLine) => void): void {
    let e: Record<string, JournalValue>;
    try {
      e = JSON.parse(json) as Record<string, JournalValue>;
    } catch {
      this.log.warn('journalctl printed a line that is not JSON: skipped');
      return;
    }
    const line = journalEntryToLine(e);
    if (line) {
      if (this.o.label !== undefined) line.source = this.o.label;
      onLine(line);
    }
    const cursor = e.__CURSOR;
    if (typeof cursor === 'string') {
      this.cursor = cursor;
      this.o.positions?.set(this.key, cursor);
    }
  }
}

/** Maps one `journalctl -o json` object to a LogLine; undefined when it has no MESSAGE. */
export function journalEntryToLine(e: Record<string, JournalValue>): LogLine | undefined {
  const message = field(e.MESSAGE);
  if (message === undefined) return undefined;
  const usec = field(e.__REALTIME_TIMESTAMP);
  const time = usec && /^\d{1,19}$/.test(usec) ? Math.floor(Number(usec) / 1000) : undefined;
  const host = (field(e._HOSTNAME) ?? 'localhost').replace(/[^\x21-\x7e]/g, '') || 'localhost';
  const ident = field(e.SYSLOG_IDENTIFIER) ?? field(e._COMM);
  const pid = field(e._PID) ?? field(e.SYSLOG_PID);
  const tag = ident ? (pid ? `${ident}[${pid}]: ` : `${ident}: `) : '';
  const stamp = time !== undefined ? `${traditionalTime(time)} ` : '';
  return { text: escapeControls(`${stamp}${host} ${tag}${message}`), source: 'journald', time };
}

function field(v: JournalValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (v.length > 0 && v.every((x) => typeof x === 'number'))
    return decodeUtf8(Uint8Array.from(v as number[]));
  // A field given several times: the first value, as journalctl's short output does.
  return v.length > 0 ? field(v[0] as JournalValue) : undefined;
}

import { type FSWatcher, watch } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Logger, silentLogger } from '../core/logger.js';
import type { LogLine } from '../detect/types.js';
import { FileTail } from './file-tail.js';
import { expandGlob, globBase, hasMagic } from './glob.js';
import { DEFAULT_MAX_LINE_BYTES } from './line-splitter.js';
import type { PositionStore, Source } from './types.js';

/**
 * Names logrotate gives old copies (`x.log.1`, `x.log.2.gz`, dateext `x.log-20261121`, `x.gz`):
 * a glob never picks them up, or a rotated file would be read again as a new one. A path given
 * literally is always followed.
 */
const ROTATED = /(\.\d+|-\d{8,10}|\.old)(\.(gz|bz2|xz|zst|lz4))?$|\.(gz|bz2|xz|zst|lz4)$/;

export interface FileSourceOptions {
  /** Files and globs (`/var/log/nginx/*.log`); files matching a glob later are picked up. */
  paths: string[];
  /** Read files that exist at start (and have no stored position) from the beginning, not the end. */
  fromStart?: boolean;
  /** Safety-net poll interval; fs.watch (inotify) does the fast path. Default 1000 ms. */
  pollMs?: number;
  /** Lines longer than this are cut (and logged). Default 1 MiB. */
  maxLineBytes?: number;
  /** How long a rotated-away file must stay unchanged before it is closed. Default 5000 ms. */
  rotateGraceMs?: number;
  positions?: PositionStore;
  logger?: Logger;
  name?: string;
}

/**
 * Follows log files: many paths and globs, rename and copytruncate rotation, files that do not
 * exist yet, and resume from a stored position. Each line's `source` is the file's path.
 */
export class FileSource implements Source {
  readonly name: string;
  private readonly tails = new Map<string, FileTail>();
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** After the first pass, newly matched files are new: read from their start. */
  private started = false;
  private onLine: ((line: LogLine) => void) | undefined;
  private readonly log: Logger;

  constructor(private readonly o: FileSourceOptions) {
    this.name = o.name ?? `file:${o.paths.join(',')}`;
    this.log = o.logger ?? silentLogger();
  }

  /** Lines cut at the length cap so far, over all files. */
  get truncatedLines(): number {
    let n = 0;
    for (const t of this.tails.values()) n += t.truncatedLines;
    return n;
  }

  async start(onLine: (line: LogLine) => void): Promise<void> {
    this.onLine = onLine;
    this.stopped = false;
    // Through trigger(), so a watch event during the first pass cannot run a second one beside it.
    await this.trigger();
    for (const p of this.o.paths) this.watchDir(hasMagic(p) ? globBase(p) : dirname(resolve(p)));
    this.timer = setInterval(() => this.trigger(), this.o.pollMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.running;
    for (const t of this.tails.values()) await t.close();
    this.tails.clear();
  }

  /** Runs one discovery + read pass now (and once more if events arrived meanwhile). */
  trigger(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (err) {
          this.log.error({ err: String(err) }, 'file source pass failed; retrying on the next poll');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    await this.discover();
    // Files found from now on appeared after the start: they are read from their beginning.
    this.started = true;
    for (const [path, t] of this.tails) {
      if (this.stopped) return;
      await t.check();
      // A glob match that went away and is fully drained is forgotten; literal paths are kept.
      if (t.idle && !this.o.paths.some((p) => !hasMagic(p) && resolve(p) === path)) {
        await t.close();
        this.tails.delete(path);
      }
    }
  }

  private async discover(): Promise<void> {
    for (const p of this.o.paths) {
      const found = hasMagic(p) ? (await expandGlob(p)).filter((f) => !ROTATED.test(f)) : [resolve(p)];
      for (const path of found) {
        if (this.tails.has(path)) continue;
        this.tails.set(
          path,
          new FileTail({
            path,
            fromStart: this.started || (this.o.fromStart ?? false),
            maxLineBytes: this.o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
            rotateGraceMs: this.o.rotateGraceMs ?? 5000,
            positions: this.o.positions,
            log: this.log,
            emit: (text, source) => this.onLine?.({ text, source }),
          }),
        );
        this.watchDir(dirname(path));
      }
    }
  }

  /**
   * One inotify watch per directory sees creations, renames and writes of every file in it. A
   * directory that does not exist yet is left to the poll.
   */
  private watchDir(dir: string): void {
    if (this.watchers.has(dir) || this.stopped) return;
    try {
      const w = watch(dir, { persistent: false }, () => this.trigger());
      w.on('error', () => {
        w.close();
        this.watchers.delete(dir);
      });
      this.watchers.set(dir, w);
    } catch {
      // ENOENT or no inotify: the periodic poll covers it.
    }
  }
}

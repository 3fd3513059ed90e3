import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { RampartError } from '../core/errors.js';
import type { PositionStore } from './types.js';

/**
 * A PositionStore kept in a small JSON file, for running sources standalone (the agent keeps
 * positions in its SQLite file instead). Writes go to `FILE.tmp` and are renamed over the file, so
 * a crash leaves either the old or the new content, never half of one. Sources call `set` after
 * every batch; the file is rewritten at most every `flushMs`, and on `flush()`/`close()`.
 */
export class PositionFile implements PositionStore {
  private readonly values = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;

  constructor(
    readonly file: string,
    private readonly flushMs = 1000,
  ) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new RampartError('E_SOURCE', `${file}: cannot read position file: ${String(err)}`, {
          cause: err,
        });
      }
    }
    if (text !== undefined && text.trim() !== '') {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw new RampartError(
          'E_SOURCE',
          `${file}: position file is not valid JSON; move it away to start over`,
          {
            cause: err,
          },
        );
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        throw new RampartError('E_SOURCE', `${file}: position file must hold a JSON object of strings`);
      }
      for (const [k, v] of Object.entries(data)) if (typeof v === 'string') this.values.set(k, v);
    }
  }

  get(key: string): string | undefined {
    return this.values.get(key);
  }

  set(key: string, value: string): void {
    if (this.values.get(key) === value) return;
    this.values.set(key, value);
    this.dirty = true;
    if (this.flushMs <= 0) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Writes pending changes now (atomically). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.dirty) return;
    this.dirty = false;
    const tmp = `${this.file}.tmp`;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(this.values), null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  close(): void {
    this.flush();
  }
}

/** A PositionStore in memory, for tests and one-shot replays. */
export class MemoryPositions implements PositionStore {
  readonly values = new Map<string, string>();
  get(key: string): string | undefined {
    return this.values.get(key);
  }
  set(key: string, value: string): void {
    this.values.set(key, value);
  }
}

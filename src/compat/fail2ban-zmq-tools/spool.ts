import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { RampartError } from '../../core/errors.js';

/**
 * The monitor's undelivered frames, in order, in one small JSON file rewritten atomically
 * (`FILE.tmp` renamed over it) on every change: bans are rare events, and a crash must leave
 * either the old or the new list, never half of one. The original kept nothing.
 */
export class Spool {
  private readonly items: string[] = [];

  constructor(readonly file: string) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new RampartError('E_SOURCE', `${file}: cannot read the spool: ${String(err)}`, { cause: err });
      }
    }
    if (text?.trim()) {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw new RampartError(
          'E_SOURCE',
          `${file}: the spool is not valid JSON; move it away to start over`,
          {
            cause: err,
          },
        );
      }
      if (!Array.isArray(data) || !data.every((x) => typeof x === 'string')) {
        throw new RampartError('E_SOURCE', `${file}: the spool must be a JSON list of strings`);
      }
      this.items.push(...data);
    }
  }

  get size(): number {
    return this.items.length;
  }

  peek(): string | undefined {
    return this.items[0];
  }

  push(frame: string): void {
    this.items.push(frame);
    this.save();
  }

  shift(): void {
    this.items.shift();
    this.save();
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(tmp, `${JSON.stringify(this.items)}\n`, { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

import { assertBannable, clip, parseTarget, type Target } from '../core/address.js';
import { readConfigText } from '../core/config-file.js';
import { type DurationSeconds, parseDuration } from '../core/duration.js';
import { RampartError } from '../core/errors.js';

export interface TargetLine {
  target: Target;
  /** The optional second column; undefined when the line gives none. */
  timeout: DurationSeconds | undefined;
  line: number;
}

/**
 * Reads `TARGET [DURATION]` lines (`#` comments and blank lines skipped). Any bad line fails the
 * whole file with `FILE:LINE:` and the offending text, before anything is applied.
 */
export function readTargetFile(file: string, opts: { bannable?: boolean } = {}): TargetLine[] {
  const text = readConfigText(file);
  const out: TargetLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/#.*/, '').trim();
    if (raw === '') continue;
    const [addr, duration, extra] = raw.split(/\s+/);
    try {
      if (extra !== undefined)
        throw new RampartError('E_USAGE', `"${clip(raw)}": expected TARGET [DURATION]`);
      const target = parseTarget(addr!, { hostBits: 'reject' });
      if (opts.bannable) assertBannable(target);
      out.push({
        target,
        timeout: duration === undefined ? undefined : parseDuration(duration),
        line: i + 1,
      });
    } catch (err) {
      if (err instanceof RampartError) {
        throw new RampartError(err.code, `${file}:${i + 1}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
  return out;
}

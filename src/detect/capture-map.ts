import { isAddressGroup } from './placeholders.js';

/**
 * A regex whose named groups were turned into plain captures, with where each name went. Reading
 * `m[index]` costs nothing, while the first read of `m.groups` builds an object with every group
 * of the regex (a hundred for sshd's failregexes merged into one), which dominated the multi-line
 * stage's time per line.
 */
export interface CaptureMap {
  /** The source with `(?<name>` written as `(`. */
  source: string;
  /** Captures in the source. */
  count: number;
  /** Name → capture index (from 1; the first group of that name). */
  names: Map<string, number>;
  /** Address captures (`ip`, `ip_2`, `ip4`...) in pattern order. */
  addresses: number[];
  /** `alt_user`, `alt_user_N` captures, by name. */
  altUsers: number[];
  /** `skiplinesN` captures. */
  skips: number[];
}

/** Maps a JavaScript regex source (placeholders expanded); indices are shifted by `offset`. */
export function captureMap(source: string, offset = 0): CaptureMap {
  return scan(source, offset, false);
}

/** The source with every capture (named or not) made non-capturing. */
export function withoutCaptures(source: string): string {
  return scan(source, 0, true).source;
}

function scan(source: string, offset: number, drop: boolean): CaptureMap {
  const names = new Map<string, number>();
  const named: [string, number][] = [];
  let out = '';
  let count = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      out += c + (source[i + 1] ?? '');
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') inClass = true;
    if (c === '(') {
      const name = /^\(\?<([A-Za-z_$][\w$]*)>/.exec(source.slice(i, i + 80));
      if (name) {
        count++;
        const index = offset + count;
        if (!names.has(name[1]!)) names.set(name[1]!, index);
        named.push([name[1]!, index]);
        out += drop ? '(?:' : '(';
        i += name[0].length - 1;
        continue;
      }
      if (source[i + 1] !== '?') {
        count++;
        if (drop) {
          out += '(?:';
          continue;
        }
      }
    }
    out += c;
  }
  const pick = (test: (n: string) => boolean) => named.filter(([n]) => test(n)).map(([, i]) => i);
  return {
    source: out,
    count,
    names,
    addresses: pick(isAddressGroup),
    altUsers: named
      .filter(([n]) => /^alt_user(?:_\d+)?$/.test(n))
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([, i]) => i),
    skips: pick((n) => /^skiplines\d+$/.test(n)),
  };
}

/** Whether a regex source has a `|` outside every group and class. */
export function hasTopLevelBar(source: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

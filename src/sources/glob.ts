import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';

/**
 * Minimal glob expansion for log paths (`/var/log/nginx/*.log`, `/srv/*\/logs/access.log`):
 * `*`, `?` and `[...]` (with `!` or `^` negation) within one path segment. `**` is not special.
 * Hidden entries only match a segment that itself starts with a dot. Node 20 has no fs.glob.
 */
export function hasMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** The deepest directory of the pattern without wildcards, the place to watch for new files. */
export function globBase(pattern: string): string {
  const parts = resolve(pattern).split(sep);
  const i = parts.findIndex((p) => hasMagic(p));
  return i === -1 ? parts.slice(0, -1).join(sep) || sep : parts.slice(0, i).join(sep) || sep;
}

export function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** Regular files matching the pattern now, sorted; unreadable directories are skipped. */
export async function expandGlob(pattern: string): Promise<string[]> {
  const abs = isAbsolute(pattern) ? pattern : resolve(pattern);
  const parts = abs.split(sep).filter((p) => p !== '');
  let dirs: string[] = [sep];
  for (let i = 0; i < parts.length; i++) {
    const seg = parts[i]!;
    const next: string[] = [];
    if (!hasMagic(seg)) {
      for (const d of dirs) next.push(join(d, seg));
    } else {
      const re = segmentRegExp(seg);
      for (const d of dirs) {
        let names: string[];
        try {
          names = await readdir(d);
        } catch {
          continue;
        }
        for (const n of names) if ((n[0] !== '.' || seg[0] === '.') && re.test(n)) next.push(join(d, n));
      }
    }
    dirs = next;
  }
  const files: string[] = [];
  for (const f of dirs) {
    try {
      if ((await stat(f)).isFile()) files.push(f);
    } catch {
      // Vanished between readdir and stat, or never existed: not a match.
    }
  }
  return files.sort();
}

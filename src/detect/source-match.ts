/**
 * Builds a predicate for a rule's `sources`: exact names (`journald`, `stdin`) or globs where `*`
 * matches within one path segment, `**` across segments and `?` one character
 * (`/var/log/nginx/*.log`, `syslog:*`).
 */
export function sourceMatcher(patterns: string[]): (source: string) => boolean {
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const p of patterns) {
    if (/[*?]/.test(p)) globs.push(globToRegExp(p));
    else exact.add(p);
  }
  return (source) => exact.has(source) || globs.some((g) => g.test(source));
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else {
      re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`);
}

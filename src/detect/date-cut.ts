/**
 * Cuts the first date one of the patterns finds out of a line, as fail2ban does before its
 * regexes run: only the date (group 1 when the pattern has a group), so the blanks around it stay
 * (`2024-03-01 10:00:00 login …` → ` login …`, `[Sat Jun 01 …] [error]` → `[] [error]`). The
 * patterns must carry the `d` flag. Returns the line unchanged when none matches.
 */
export function cutDate(line: string, patterns: readonly RegExp[]): string {
  for (const re of patterns) {
    const m = re.exec(line);
    if (!m) continue;
    const span = m.indices?.[1] ?? m.indices?.[0] ?? [m.index, m.index + m[0].length];
    return line.slice(0, span[0]) + line.slice(span[1]);
  }
  return line;
}

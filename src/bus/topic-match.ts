/**
 * MQTT 3.1.1 topic filter matching (section 4.7): `+` matches one level, `#` (last) the rest,
 * including the parent level itself; filters starting with a wildcard do not match `$` topics.
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const part = f[i];
    if (part === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (part !== '+' && part !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when `filter` is a valid MQTT subscription filter. */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const parts = filter.split('/');
  return parts.every((p, i) => {
    if (p.includes('#')) return p === '#' && i === parts.length - 1;
    if (p.includes('+')) return p === '+';
    return true;
  });
}

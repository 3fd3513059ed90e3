/**
 * Finds the shape of pattern that backtracks super-linearly on long lines: a group repeated more
 * than once that itself holds an unbounded repeat. Two forms are reported:
 *
 * - the outer repeat is unbounded (`(a+)+`, `(\w+\s?)*`, `(\d+)*`): star height 2, exponential
 *   when a match fails;
 * - the outer repeat is bounded but the inner one is of any character (`(.*a){12}`, `(.+,){3}`):
 *   the same as stacking that many `.*`, polynomial of that degree.
 *
 * A bounded repeat of a group whose unbounded part is a narrower atom (`(?:\d+\.){3}`, an IPv4
 * address) is the usual safe shape and is not reported. Placeholders (`<HOST>`) are plain text
 * here: run this on the pattern as the user wrote it, before they are expanded.
 *
 * Returns the offending group with its quantifier, or null.
 */
export function nestedRepeat(source: string): string | null {
  interface Frame {
    start: number;
    /** Holds an unbounded repeat somewhere inside. */
    unbounded: boolean;
    /** Holds an unbounded repeat of `.` somewhere inside. */
    anyUnbounded: boolean;
  }
  const stack: Frame[] = [{ start: 0, unbounded: false, anyUnbounded: false }];
  // The atom just read, for the quantifier that may follow it.
  let atom: { start: number; group?: Frame; dot: boolean } | null = null;
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      atom = { start: i, dot: false };
      i += 2;
      continue;
    }
    if (c === '[') {
      const start = i;
      i++;
      if (source[i] === ']') i++;
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
      i++;
      atom = { start, dot: false };
      continue;
    }
    if (c === '(') {
      stack.push({ start: i, unbounded: false, anyUnbounded: false });
      atom = null;
      i++;
      continue;
    }
    if (c === ')') {
      const group = stack.length > 1 ? stack.pop()! : undefined;
      const parent = stack[stack.length - 1]!;
      if (group !== undefined) {
        parent.unbounded ||= group.unbounded;
        parent.anyUnbounded ||= group.anyUnbounded;
      }
      atom = group === undefined ? null : { start: group.start, group, dot: false };
      i++;
      continue;
    }
    const q = quantifier(source, i);
    if (q !== null && atom !== null) {
      const frame = stack[stack.length - 1]!;
      const g = atom.group;
      if (g !== undefined && q.max > 1 && (q.max === Infinity ? g.unbounded : g.anyUnbounded)) {
        return source.slice(atom.start, q.end);
      }
      if (q.max === Infinity) {
        frame.unbounded = true;
        if (atom.dot || g?.anyUnbounded) frame.anyUnbounded = true;
      }
      atom = null;
      i = q.end;
      continue;
    }
    atom = c === '|' || c === '^' || c === '$' ? null : { start: i, dot: c === '.' };
    i++;
  }
  return null;
}

/** The quantifier at `i` (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each maybe lazy), or null. */
function quantifier(s: string, i: number): { max: number; end: number } | null {
  const c = s[i];
  let max: number;
  let end: number;
  if (c === '*' || c === '+') {
    max = Infinity;
    end = i + 1;
  } else if (c === '?') {
    max = 1;
    end = i + 1;
  } else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(s.slice(i, i + 24));
    if (m === null) return null;
    max = m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
    end = i + m[0].length;
  } else {
    return null;
  }
  if (s[end] === '?') end++;
  return { max, end };
}

/**
 * Finds the longest literal text that every match of a regex must contain, so the engine can
 * reject most lines with one `indexOf` before running the regex. Conservative: when in doubt
 * (top-level alternation, case-insensitive flag) it returns '' and the regex always runs.
 */
export function requiredLiteral(source: string, flags = ''): string {
  if (flags.includes('i')) return '';
  let best = '';
  let run = '';
  const flush = () => {
    if (run.length > best.length) best = run;
    run = '';
  };
  const n = source.length;
  let i = 0;
  while (i < n) {
    const c = source[i]!;
    let lit: string | null = null;
    let next = i + 1;
    if (c === '\\') {
      const e = source[i + 1];
      if (e === undefined) return '';
      // Escaped punctuation is itself; letters and digits are classes, anchors or references.
      if (!/[0-9A-Za-z]/.test(e)) lit = e;
      next = i + 2;
    } else if (c === '[') {
      next = skipClass(source, i);
    } else if (c === '(') {
      next = skipGroup(source, i);
      if (next < 0) return '';
    } else if (c === '|') {
      return '';
    } else if ('.^$)'.includes(c)) {
      // not literal
    } else if ('?*+{'.includes(c)) {
      // A quantifier after a non-literal; handled below for literals.
      next = c === '{' ? skipBrace(source, i) : i + 1;
    } else {
      lit = c;
    }
    // A quantifier on this atom: `?`, `*` and `{0,` make it optional, `+`/`{n` repeat it.
    const q = source[next];
    if (lit !== null && (q === '?' || q === '*' || q === '{')) {
      lit = null;
    } else if (lit !== null && q === '+') {
      run += lit;
      lit = null;
      flush();
      i = next + 1;
      continue;
    }
    if (lit === null) flush();
    else run += lit;
    i = next;
  }
  flush();
  return best;
}

function skipClass(s: string, start: number): number {
  let i = start + 1;
  if (s[i] === '^') i++;
  if (s[i] === ']') i++;
  while (i < s.length && s[i] !== ']') i += s[i] === '\\' ? 2 : 1;
  return i + 1;
}

function skipGroup(s: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') i += 2;
    else if (c === '[') i = skipClass(s, i);
    else {
      if (c === '(') depth++;
      else if (c === ')') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
  }
  return -1;
}

function skipBrace(s: string, start: number): number {
  const end = s.indexOf('}', start);
  return end < 0 ? start + 1 : end + 1;
}

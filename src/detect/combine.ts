import { isAddressGroup } from './placeholders.js';

/**
 * Merges a rule's anchored patterns into one regex so a line costs one regex run instead of one
 * per pattern: `^P(?:(?:A)|(?:B)|...)` where P is the longest common prefix of the patterns
 * (for sshd, the `host sshd[pid]: ` part), so it is matched once. All patterns are anchored at
 * `^`, so alternation order gives the same answer as trying them one by one. Named groups become
 * plain groups (duplicate names are a syntax error in Node 20); the engine reads the address by
 * group number instead.
 */
export interface Combined {
  re: RegExp;
  /** Group numbers that may hold the address, in pattern order. */
  addressGroups: number[];
}

interface Scan {
  /** Index in the source where each top-level atom starts. */
  atomStarts: number[];
  topLevelAlternation: boolean;
  /** Capturing groups in order: the name, or '' for unnamed ones. */
  groups: string[];
}

/**
 * Returns null when the patterns cannot be merged safely (then they run one by one). A single
 * pattern is only unnamed: the engine then reads its address by group number too, instead of
 * walking the match's `groups` object (sshd's one good pattern, on every line no failure pattern
 * matched: docs/adr/0055).
 */
export function combinePatterns(sources: string[]): Combined | null {
  if (sources.length === 1) return single(sources[0]!);
  if (sources.length < 2 || !sources.every((s) => s.startsWith('^'))) return null;
  const bodies = sources.map((s) => s.slice(1));
  const scans = bodies.map(scan);
  if (scans.some((s) => s.topLevelAlternation)) return null;
  let common = bodies[0]!.length;
  for (const b of bodies) {
    let i = 0;
    while (i < common && b.charCodeAt(i) === bodies[0]!.charCodeAt(i)) i++;
    common = i;
  }
  // Cut back to an atom boundary that is one in every pattern, with no quantifier after it.
  let cut = 0;
  for (const start of scans[0]!.atomStarts) {
    if (start > common) break;
    if (scans.every((s, k) => s.atomStarts.includes(start) && !'?*+{'.includes(bodies[k]![start] ?? '')))
      cut = start;
  }
  const prefix = bodies[0]!.slice(0, cut);
  const prefixGroups = scan(prefix).groups.length;
  const addressGroups: number[] = [];
  let offset = prefixGroups;
  for (const s of scans) {
    s.groups.forEach((name, i) => {
      if (i >= prefixGroups && isAddressGroup(name)) addressGroups.push(i + 1 - prefixGroups + offset);
    });
    offset += s.groups.length - prefixGroups;
  }
  const alternatives = bodies.map((b) => `(?:${unname(b.slice(cut))})`);
  const source = `^${unname(prefix)}(?:${alternatives.join('|')})`;
  try {
    return { re: new RegExp(source), addressGroups };
  } catch {
    return null;
  }
}

function single(source: string): Combined | null {
  const addressGroups: number[] = [];
  scan(source).groups.forEach((name, i) => {
    if (isAddressGroup(name)) addressGroups.push(i + 1);
  });
  try {
    return { re: new RegExp(unname(source)), addressGroups };
  } catch {
    return null;
  }
}

/** `(?<name>` → `(`: same group numbers, no duplicate names. */
function unname(source: string): string {
  let out = '';
  let i = 0;
  let inClass = false;
  while (i < source.length) {
    const c = source[i]!;
    if (c === '\\') {
      out += source.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (
      c === '(' &&
      source[i + 1] === '?' &&
      source[i + 2] === '<' &&
      /[A-Za-z_$]/.test(source[i + 3] ?? '')
    ) {
      const close = source.indexOf('>', i);
      out += '(';
      i = close + 1;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

function scan(source: string): Scan {
  const atomStarts: number[] = [];
  const groups: string[] = [];
  let depth = 0;
  let inClass = false;
  let topLevelAlternation = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (depth === 0 && !inClass && !'?*+{'.includes(c)) atomStarts.push(i);
    if (c === '\\') {
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '(') {
      depth++;
      if (source[i + 1] !== '?') groups.push('');
      else if (source[i + 2] === '<' && /[A-Za-z_$]/.test(source[i + 3] ?? '')) {
        groups.push(source.slice(i + 3, source.indexOf('>', i)));
      }
    } else if (c === ')') {
      depth--;
    } else if (c === '|' && depth === 0) {
      topLevelAlternation = true;
    } else if (c === '{' && depth === 0) {
      // A quantifier's digits are not atoms.
      const end = source.indexOf('}', i);
      if (end > 0 && /^\{\d+(?:,\d*)?\}$/.test(source.slice(i, end + 1))) i = end;
    }
  }
  atomStarts.push(source.length);
  return { atomStarts, topLevelAlternation, groups };
}

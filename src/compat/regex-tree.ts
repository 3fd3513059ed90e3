/**
 * A shallow parse of a regex source: where each group opens and closes, its quantifier, and the
 * `|` that split its body. Enough to rewrite a pattern by spans (expand conditionals, force a group
 * to take part or not) without a full regex AST. Works for Python, Perl and JavaScript syntax.
 */
export interface GroupNode {
  /** Index of `(`. */
  open: number;
  /** Index where the body starts (after `(?:`, `(?P<n>`, `(?(n)`...). */
  bodyStart: number;
  /** Index of the matching `)`. */
  close: number;
  /** Index just past the quantifier (= close + 1 when there is none). */
  end: number;
  kind: 'capture' | 'named' | 'group' | 'look' | 'cond' | 'flags';
  /** Group name (`named`) or the condition's reference (`cond`). */
  name?: string;
  /** Minimum repetitions its quantifier allows (1 without a quantifier). */
  min: number;
  quantifier: string;
  parent: GroupNode | undefined;
  /** Indices of the `|` directly in this group's body. */
  bars: number[];
  /** 1-based number among capturing groups (capture and named), 0 for others. */
  index: number;
}

export interface RegexTree {
  source: string;
  groups: GroupNode[];
  /** `|` at the top level. */
  bars: number[];
}

/** Returns the index of the `]` that closes a class opened at `start`, or -1. */
export function classEnd(src: string, start: number): number {
  let i = start + 1;
  if (src[i] === '^') i++;
  if (src[i] === ']') i++; // a leading `]` is a literal in Python, Perl (and harmless here)
  for (; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (c === ']') return i;
  }
  return -1;
}

const QUANT = /^(?:[?*+]|\{\d*(?:,\d*)?\})[?+]?/;

export function parseRegexTree(src: string): RegexTree {
  const groups: GroupNode[] = [];
  const top: number[] = [];
  const stack: GroupNode[] = [];
  let captures = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      const e = classEnd(src, i);
      if (e < 0) throw new Error('unterminated character class "["');
      i = e;
    } else if (c === '(') {
      const node = openGroup(src, i, stack[stack.length - 1]);
      if (node.kind === 'capture' || node.kind === 'named') node.index = ++captures;
      groups.push(node);
      stack.push(node);
      i = node.bodyStart - 1;
    } else if (c === ')') {
      const node = stack.pop();
      if (!node) throw new Error(`unbalanced ")" at offset ${i}`);
      node.close = i;
      const q = QUANT.exec(src.slice(i + 1, i + 24));
      if (q && (q[0][0] !== '{' || /\d/.test(q[0]))) {
        node.quantifier = q[0];
        node.min = quantMin(q[0]);
      }
      node.end = i + 1 + node.quantifier.length;
    } else if (c === '|') {
      const owner = stack[stack.length - 1];
      (owner ? owner.bars : top).push(i);
    }
  }
  if (stack.length > 0) throw new Error('unbalanced "(": a group is never closed');
  return { source: src, groups, bars: top };
}

function quantMin(q: string): number {
  if (q[0] === '?' || q[0] === '*') return 0;
  if (q[0] === '+') return 1;
  const m = /^\{(\d*)/.exec(q)!;
  return m[1] === '' ? 0 : Number(m[1]);
}

function openGroup(src: string, i: number, parent: GroupNode | undefined): GroupNode {
  const node: GroupNode = {
    open: i,
    bodyStart: i + 1,
    close: -1,
    end: -1,
    kind: 'capture',
    min: 1,
    quantifier: '',
    parent,
    bars: [],
    index: 0,
  };
  if (src[i + 1] !== '?') return node;
  const rest = src.slice(i + 2, i + 200);
  const named = /^P?<([A-Za-z_]\w*)>/.exec(rest) ?? /^'([A-Za-z_]\w*)'/.exec(rest);
  const cond = /^\(([^)]*)\)/.exec(rest);
  const look = /^(?:=|!|<=|<!)/.exec(rest);
  const flags = /^\^?[a-zA-Z]*(?:-[a-zA-Z]*)?(:|\))/.exec(rest);
  if (named) {
    node.kind = 'named';
    node.name = named[1];
    node.bodyStart = i + 2 + named[0].length;
  } else if (cond) {
    node.kind = 'cond';
    node.name = cond[1];
    node.bodyStart = i + 2 + cond[0].length;
  } else if (look) {
    node.kind = 'look';
    node.bodyStart = i + 2 + look[0].length;
  } else if (flags) {
    node.kind = flags[1] === ')' ? 'flags' : 'group';
    // `(?i)` has no body; treat it as an empty group so the parser stays balanced.
    node.bodyStart = i + 2 + flags[0].length - (flags[1] === ')' ? 1 : 0);
  } else {
    node.kind = 'group';
    node.bodyStart = i + 2;
  }
  return node;
}

/** A text edit by span; `text` replaces source[start, end). */
export interface Edit {
  start: number;
  end: number;
  text: string;
}

/**
 * Applies edits; an edit lying entirely inside a deletion (or another replacement) is dropped,
 * because the text it would change is gone. Partial overlaps are a bug in the caller.
 */
export function applyEdits(src: string, edits: Edit[]): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Edit[] = [];
  for (const e of sorted) {
    const last = kept[kept.length - 1];
    if (last && e.start < last.end) {
      if (e.end <= last.end) continue;
      throw new Error('overlapping rewrites of the same pattern');
    }
    kept.push(e);
  }
  let out = '';
  let pos = 0;
  for (const e of kept) {
    out += src.slice(pos, e.start) + e.text;
    pos = e.end;
  }
  return out + src.slice(pos);
}

/** The span [from, to) of the alternative (between `|`s) of `bars`' owner that contains `at`. */
function branchOf(
  bars: number[],
  bodyStart: number,
  bodyEnd: number,
  at: number,
): { from: number; to: number } {
  let from = bodyStart;
  let to = bodyEnd;
  for (const b of bars) {
    if (b < at) from = b + 1;
    else {
      to = b;
      break;
    }
  }
  return { from, to };
}

function ownerSpan(
  tree: RegexTree,
  node: GroupNode | undefined,
): { bars: number[]; start: number; end: number } {
  return node
    ? { bars: node.bars, start: node.bodyStart, end: node.close }
    : { bars: tree.bars, start: 0, end: tree.source.length };
}

/**
 * Edits that make `node` certainly take part in a match: optional quantifiers on it and on its
 * enclosing groups become mandatory, and each enclosing alternation keeps only the alternative
 * holding it. Null when that cannot be expressed (the group sits in a lookaround or a conditional).
 */
export function forceTaking(tree: RegexTree, node: GroupNode): Edit[] | null {
  const edits: Edit[] = [];
  let n: GroupNode | undefined = node;
  while (n) {
    if (n.min === 0) edits.push({ start: n.close + 1, end: n.end, text: mandatory(n.quantifier) });
    const p: GroupNode | undefined = n.parent;
    if (p && (p.kind === 'look' || p.kind === 'cond')) return null;
    const owner = ownerSpan(tree, p);
    if (owner.bars.length > 0) {
      const b = branchOf(owner.bars, owner.start, owner.end, n.open);
      edits.push({ start: owner.start, end: b.from, text: '' }, { start: b.to, end: owner.end, text: '' });
    }
    n = p;
  }
  return edits;
}

function mandatory(q: string): string {
  const lazy = q.endsWith('?') && q.length > 1 ? '?' : '';
  if (q[0] === '?') return '';
  if (q[0] === '*') return `+${lazy}`;
  return q.replace(/^\{\d*/, '{1');
}

/**
 * Edits that make `node` certainly not take part: the nearest optional group on its path is
 * removed, or the alternative holding it. Null when every match needs it.
 */
export function forceSkipping(tree: RegexTree, node: GroupNode): Edit[] | null {
  let n: GroupNode | undefined = node;
  while (n) {
    if (n.min === 0) return [{ start: n.open, end: n.end, text: '' }];
    const p: GroupNode | undefined = n.parent;
    if (p && (p.kind === 'look' || p.kind === 'cond')) return null;
    const owner = ownerSpan(tree, p);
    if (owner.bars.length > 0) {
      const b = branchOf(owner.bars, owner.start, owner.end, n.open);
      // Remove the alternative together with one neighbouring `|`.
      const start = b.from > owner.start ? b.from - 1 : b.from;
      const end = b.from > owner.start ? b.to : Math.min(b.to + 1, owner.end);
      return [{ start, end, text: '' }];
    }
    n = p;
  }
  return null;
}

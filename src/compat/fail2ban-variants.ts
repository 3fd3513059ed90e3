import { ConfigError } from '../core/errors.js';
import {
  applyEdits,
  type Edit,
  forceSkipping,
  forceTaking,
  type GroupNode,
  parseRegexTree,
  type RegexTree,
} from './regex-tree.js';

/** Where a regex was written, for errors. */
export type Where = { file: string; line: number; key: string };

const MAX_VARIANTS = 32;
const PLACEHOLDER = /<HOST>|<ADDR>|<IP4>|<IP6>/g;

/**
 * Expands Python conditionals `(?(name)yes|no)`, which JavaScript lacks, into separate patterns:
 * one where the named group took part (and the `yes` branch applies), one where it did not.
 * Back-references, which the engine refuses (they can backtrack without bound), are loosened to
 * a copy of the group they refer to.
 */
export function expand(regex: string, where: Where, notes: string[]): string[] {
  const done: string[] = [];
  const queue = [regex];
  while (queue.length > 0) {
    const r = queue.shift()!;
    const tree = parseTreeAt(r, where);
    const cond = tree.groups.find((g) => g.kind === 'cond');
    if (!cond) {
      done.push(...splitPlaceholders(loosenBackrefs(r, where, notes), where));
      continue;
    }
    const ref = cond.name!;
    const target = tree.groups.find((g) => (/^\d+$/.test(ref) ? g.index === Number(ref) : g.name === ref));
    if (!target) throw new ConfigError(`conditional (?(${ref})...) refers to no group`, where);
    const body = r.slice(cond.bodyStart, cond.close);
    const bar = cond.bars[0];
    const yes = bar === undefined ? body : r.slice(cond.bodyStart, bar);
    const no = bar === undefined ? '' : r.slice(bar + 1, cond.close);
    if (cond.bars.length > 1) throw new ConfigError('conditional with more than two branches', where);
    const replace = (text: string): Edit => ({
      start: cond.open,
      end: cond.end,
      text: `(?:${text})${cond.quantifier}`,
    });
    if (target.open > cond.open) {
      queue.push(applyEdits(r, [replace(no)]));
      continue;
    }
    const taken = forceTaking(tree, target);
    const skipped = forceSkipping(tree, target);
    if (taken) queue.push(applyEdits(r, [...taken, replace(yes)]));
    if (skipped) queue.push(applyEdits(r, [...skipped, replace(no)]));
    if (!taken && !skipped) throw new ConfigError(`cannot expand conditional (?(${ref})...)`, where);
    if (queue.length + done.length > MAX_VARIANTS)
      throw new ConfigError('too many conditional combinations', where);
  }
  return done;
}

function loosenBackrefs(regex: string, where: Where, notes: string[]): string {
  if (!/\(\?P=\w+\)|\\[1-9]/.test(regex)) return regex;
  const tree = parseTreeAt(regex, where);
  const edits: Edit[] = [];
  const re = /\(\?P=(\w+)\)|\\([1-9])|\\./g;
  for (let m = re.exec(regex); m; m = re.exec(regex)) {
    if (m[1] === undefined && m[2] === undefined) continue;
    if (insideClass(tree.source, m.index)) continue;
    const g = tree.groups.find((n) => (m![1] !== undefined ? n.name === m![1] : n.index === Number(m![2])));
    if (!g) throw new ConfigError(`back-reference ${m[0]} refers to no group`, where);
    const copy = regex.slice(g.bodyStart, g.close).replace(/\(\?P<\w+>/g, '(?:');
    edits.push({ start: m.index, end: m.index + m[0].length, text: `(?:${copy})` });
    notes.push(
      `back-reference ${m[0]} matched loosely (any text its group could match), as the engine refuses back-references`,
    );
  }
  return applyEdits(regex, edits);
}

function insideClass(src: string, at: number): boolean {
  let inClass = false;
  for (let i = 0; i < at; i++) {
    if (src[i] === '\\') i++;
    else if (src[i] === '[') inClass = true;
    else if (src[i] === ']') inClass = false;
  }
  return inClass;
}

/**
 * Splits a pattern on whether group `name` takes part: [the pattern forced to take it (or null
 * if it has no such group or never can), the pattern forced to skip it (null if it must take it)].
 */
export function split(regex: string, name: string, where: Where): [string | null, string | null] {
  const tree = parseTreeAt(regex, where);
  const g: GroupNode | undefined = tree.groups.find((n) => n.name === name);
  if (!g) return [null, regex];
  const taken = forceTaking(tree, g);
  const skipped = forceSkipping(tree, g);
  return [taken ? applyEdits(regex, taken) : null, skipped ? applyEdits(regex, skipped) : null];
}

/**
 * The engine captures the address from the first placeholder of a pattern only, so
 * `\[(?:IPv6:<IP6>|<IP4>)\]` would never capture an IPv4 address. When two placeholders sit in
 * different alternatives of one group, the pattern is split into one pattern per alternative,
 * in order: the same lines match, and each pattern has its address first.
 */
function splitPlaceholders(regex: string, where: Where): string[] {
  const tree = parseTreeAt(regex, where);
  const at: number[] = [];
  PLACEHOLDER.lastIndex = 0;
  for (let m = PLACEHOLDER.exec(regex); m; m = PLACEHOLDER.exec(regex))
    if (!insideClass(regex, m.index)) at.push(m.index);
  for (let i = 0; i + 1 < at.length; i++) {
    const [a, b] = [at[i]!, at[i + 1]!];
    const owner = innermostAround(tree, a, b);
    const bars = (owner ? owner.bars : tree.bars).filter((x) => x > a && x < b);
    if (bars.length === 0) continue;
    const all = owner ? owner.bars : tree.bars;
    const start = owner ? owner.bodyStart : 0;
    const end = owner ? owner.close : regex.length;
    const bounds = [start, ...all.map((x) => x + 1)];
    const ends = [...all, end];
    const out: string[] = [];
    for (let k = 0; k < bounds.length; k++) {
      const edits: Edit[] = [
        { start, end: bounds[k]!, text: '' },
        { start: ends[k]!, end, text: '' },
      ];
      out.push(...splitPlaceholders(applyEdits(regex, edits), where));
    }
    return out;
  }
  return [regex];
}

/** The deepest group (not a lookaround or conditional) whose body holds both offsets. */
function innermostAround(tree: RegexTree, a: number, b: number): GroupNode | undefined {
  let best: GroupNode | undefined;
  for (const g of tree.groups) {
    if (g.bodyStart <= a && g.close > b && (!best || g.open > best.open)) best = g;
  }
  return best;
}

export function parseTreeAt(regex: string, where: Where) {
  try {
    return parseRegexTree(regex);
  } catch (err) {
    throw new ConfigError(`invalid regex: ${(err as Error).message}`, where);
  }
}

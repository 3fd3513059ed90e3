import { formatIPv4, formatIPv6, parseTarget, type Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';

/**
 * The largest element timeout `nft` accepts (found by bisection against nft 1.0.6: one more
 * second is "value too large"). Longer bans are clamped; the agent's reconcile renews them.
 */
export const NFT_MAX_TIMEOUT = 99_999_999;

/** Elements per `add element` statement: long enough to be cheap, short enough to locate errors. */
export const ELEMENTS_PER_STATEMENT = 10_000;

/** Set and table names rampart writes into nft scripts; anything else is refused up front. */
export const NFT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

export function elementText(text: string, timeout: DurationSeconds): string {
  if (timeout === null) return text;
  return `${text} timeout ${Math.min(Math.max(1, timeout), NFT_MAX_TIMEOUT)}s`;
}

/** One line of an nft script, remembering which set and elements it carries (for errors). */
export interface ScriptLine {
  text: string;
  set?: string;
  elements?: string[];
  /**
   * The elements are the `{ a, b timeout 5s, ... }` items of `text` itself: a million-element
   * rebuild then keeps no second list of them (errors read the element back from the text).
   */
  inline?: boolean;
}

/** `VERB element FAMILY TABLE SET { e1, e2, ... }` lines, chunked. */
export function elementLines(
  verb: 'add' | 'delete',
  where: string,
  set: string,
  elements: string[],
  rendered: (i: number) => string,
): ScriptLine[] {
  const out: ScriptLine[] = [];
  for (let i = 0; i < elements.length; i += ELEMENTS_PER_STATEMENT) {
    const chunk = elements.slice(i, i + ELEMENTS_PER_STATEMENT);
    const parts: string[] = new Array(chunk.length);
    for (let j = 0; j < chunk.length; j++) parts[j] = rendered(i + j);
    out.push({ text: `${verb} element ${where} ${set} { ${parts.join(', ')} }`, set, elements: chunk });
  }
  return out;
}

export function carriesElements(line: ScriptLine): boolean {
  return line.inline === true || (line.elements?.length ?? 0) > 0;
}

/** The first element a line carries, for messages. */
export function firstElement(line: ScriptLine): string | undefined {
  if (!line.inline) return line.elements?.[0];
  const open = line.text.indexOf('{ ');
  return open < 0 ? undefined : line.text.slice(open + 2).split(/[ ,]/, 1)[0];
}

export interface NftFailure {
  message: string;
  set?: string;
  element?: string;
  /** The script line nft complained about. */
  line?: string;
}

// `/dev/stdin:` from the program, `/proc/self/fd/N:` from the library reading a memory file.
const LOCATED = /^(?:\/dev\/stdin|-|\/proc\/self\/fd\/\d+):(\d+):(\d+)-(\d+): Error: (.*)$/m;

/**
 * Reads nft's first error and points at the set and element it is about: nft prints
 * `FILE:LINE:COL-COL: Error: ...` with columns into the script we fed it.
 */
export function parseNftError(stderr: string, script: ScriptLine[]): NftFailure {
  const m = LOCATED.exec(stderr);
  if (!m) {
    const first = stderr.split('\n').find((l) => l.includes('Error')) ?? stderr.split('\n')[0] ?? '';
    const line = script.find(carriesElements);
    return {
      message: first.replace(/^.*?Error: /, '').trim() || 'nft failed',
      set: line?.set,
      element: line && firstElement(line),
    };
  }
  const line = script[Number(m[1]) - 1];
  const message = m[4]!.trim();
  if (!line) return { message };
  const from = Number(m[2]) - 1;
  // nft may mark only part of an element (`0.2.x` of `192.0.2.x`): widen to the whole list item.
  const open = line.text.lastIndexOf('{ ', from);
  const start = Math.max(line.text.lastIndexOf(', ', from) + 2, open >= 0 ? open + 2 : 0);
  const item = line.text.slice(start).split(/[ ,]/, 1)[0] ?? '';
  const hit = line.inline ? item || undefined : line.elements?.find((e) => e === item);
  const marked = line.text.slice(from, Number(m[3])).trim();
  const element = hit ?? line.elements?.[0] ?? (line.set ? undefined : marked);
  return { message, set: line.set, element, line: line.text };
}

type JsonVal = string | { prefix: { addr: string; len: number } } | { range: [string, string] };
interface JsonElem {
  elem?: { val: JsonVal; timeout?: number; expires?: number };
  prefix?: { addr: string; len: number };
  range?: [string, string];
}

/** Elements of `nft -j list set` output as targets with their remaining seconds. */
export function parseListedSet(json: string): Array<{ target: Target; timeout: DurationSeconds }> {
  const doc = JSON.parse(json) as { nftables: Array<{ set?: { elem?: Array<string | JsonElem> } }> };
  const out: Array<{ target: Target; timeout: DurationSeconds }> = [];
  for (const item of doc.nftables) {
    for (const e of item.set?.elem ?? []) {
      let val: JsonVal;
      let timeout: DurationSeconds = null;
      if (typeof e === 'string') val = e;
      else if (e.elem) {
        val = e.elem.val;
        if (e.elem.timeout !== undefined) timeout = e.elem.expires ?? e.elem.timeout;
      } else if (e.prefix) val = { prefix: e.prefix };
      else if (e.range) val = { range: e.range };
      else continue;
      for (const target of valTargets(val)) out.push({ target, timeout });
    }
  }
  return out;
}

function valTargets(val: JsonVal): Target[] {
  if (typeof val === 'string') return [parseTarget(val)];
  if ('prefix' in val) return [parseTarget(`${val.prefix.addr}/${val.prefix.len}`)];
  return rangeToCidrs(parseTarget(val.range[0]), parseTarget(val.range[1]));
}

/** An arbitrary first-last range (an operator's auto-merged set) as the fewest CIDR blocks. */
export function rangeToCidrs(from: Target, to: Target): Target[] {
  const bits = from.family === 4 ? 32 : 128;
  const out: Target[] = [];
  let lo = from.first;
  const hi = to.last;
  while (lo <= hi) {
    let size = 0;
    while (
      size < bits &&
      (lo & ((1n << BigInt(size + 1)) - 1n)) === 0n &&
      lo + (1n << BigInt(size + 1)) - 1n <= hi
    )
      size++;
    const text = from.family === 4 ? formatIPv4(Number(lo)) : formatIPv6(lo);
    out.push(parseTarget(`${text}/${bits - size}`));
    lo += 1n << BigInt(size);
  }
  return out;
}

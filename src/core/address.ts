import { RampartError } from './errors.js';

/**
 * An address or a CIDR range, normalised. IPv4 is kept as a 32-bit number in `first`/`last`
 * (as bigint so both families share one comparison path in the allowlist); `text` is the
 * canonical form used everywhere else (kernel sets, the decision log, the API):
 * `192.0.2.7`, `198.51.100.0/24`, `2001:db8::1`, `2001:db8::/32`. A single host has no prefix in
 * its text.
 */
export interface Target {
  family: 4 | 6;
  prefix: number;
  first: bigint;
  last: bigint;
  text: string;
}

/**
 * A single host as parseTarget's fast paths make it: the text was read into the numbers, so the
 * two agree. The netlink encoders (firewall/netlink-message.ts) check any other Target's text
 * against its numbers before encoding the numbers; these need no second parse. Fields are
 * readonly: nothing may change one after the check.
 */
export class ParsedHost implements Target {
  constructor(
    readonly family: 4 | 6,
    readonly prefix: number,
    readonly first: bigint,
    readonly last: bigint,
    readonly text: string,
  ) {}
}

export function isSingleHost(t: Target): boolean {
  return t.prefix === (t.family === 4 ? 32 : 128);
}

/** Parses dotted-quad IPv4 strictly (no leading zeros, which some libcs read as octal). */
export function parseIPv4(s: string): number | null {
  const len = s.length;
  if (len < 7 || len > 15) return null;
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return null;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return null;
      digits++;
    } else if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + octet;
}

export function formatIPv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const HEX4 = /^[0-9a-fA-F]{1,4}$/;

/** Parses IPv6 text (with `::` and an embedded dotted quad) into a 128-bit value. */
export function parseIPv6(s: string): bigint | null {
  if (s.length < 2 || s.length > 45 || s.includes('%')) return null;
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parseGroups = (part: string, allowV4Tail: boolean): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (HEX4.test(g)) {
        out.push(Number.parseInt(g, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, false);
    const tail = parseGroups(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(s, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

const GROUPS = new Int32Array(8);

/**
 * IPv6 text made of hex groups (at most one `::`) as four 32-bit words, most significant first,
 * written into `into`: the same value as parseIPv6 without strings or bigints, for detection's
 * per-line path. False for anything else, valid or not (a dotted-quad tail, a zone, bad text):
 * callers then use parseIPv6.
 */
export function parseIPv6Words(s: string, into: Int32Array): boolean {
  const len = s.length;
  if (len < 2 || len > 39) return false;
  let n = 0;
  let gap = -1;
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    let v = 0;
    let d = 0;
    for (; i < len && d < 5; i++, d++) {
      const c = s.charCodeAt(i);
      const h = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (h < 0) break;
      v = v * 16 + h;
    }
    if (d === 0 || d > 4 || n === 8) return false;
    GROUPS[n++] = v;
    if (i === len) break;
    if (s.charCodeAt(i) !== 58 || ++i === len) return false;
    if (s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    }
  }
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const zeros = gap < 0 ? 0 : 8 - n;
  for (let k = 0; k < 8; k += 2) {
    const hi = gap < 0 || k < gap ? GROUPS[k]! : k < gap + zeros ? 0 : GROUPS[k - zeros]!;
    const lo = gap < 0 || k + 1 < gap ? GROUPS[k + 1]! : k + 1 < gap + zeros ? 0 : GROUPS[k + 1 - zeros]!;
    into[k >> 1] = (hi << 16) | lo;
  }
  return true;
}

/** RFC 5952 text: lower case, longest run (≥2) of zero groups as `::`, first run on a tie. */
export function formatIPv6(v: bigint): string {
  const words = new Int32Array(4);
  for (let i = 0; i < 4; i++) words[i] = Number((v >> BigInt(96 - 32 * i)) & 0xffffffffn) | 0;
  return formatIPv6Words(words);
}

const FORMAT_GROUPS = new Array<number>(8).fill(0);
/** Where `::` goes in the groups `splitGroups` wrote: the first longest run of two or more zeros (start -1: none). */
const ZERO_RUN = { start: -1, len: 0 };

/** Writes the eight 16-bit groups of `words` into FORMAT_GROUPS and their longest zero run into ZERO_RUN. */
function splitGroups(words: Int32Array): void {
  const groups = FORMAT_GROUPS;
  for (let i = 0; i < 4; i++) {
    groups[2 * i] = (words[i]! >>> 16) & 0xffff;
    groups[2 * i + 1] = words[i]! & 0xffff;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  ZERO_RUN.start = bestStart;
  ZERO_RUN.len = bestLen;
}

/** formatIPv6 of four 32-bit words, most significant first (parseIPv6Words' output), without bigints. */
export function formatIPv6Words(words: Int32Array): string {
  splitGroups(words);
  const groups = FORMAT_GROUPS;
  const bestStart = ZERO_RUN.start;
  const bestLen = ZERO_RUN.len;
  let text = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += '::';
      i += bestLen - 1;
    } else {
      if (text !== '' && !text.endsWith(':')) text += ':';
      text += groups[i]!.toString(16);
    }
  }
  return text;
}

/** Hex digits `g` takes in RFC 5952 text (no leading zeros). */
function hexDigits(g: number): number {
  return g < 0x10 ? 1 : g < 0x100 ? 2 : g < 0x1000 ? 3 : 4;
}

/**
 * Whether `s`, which parseIPv6Words read into `words`, is already the text formatIPv6Words would
 * write: lower case, no leading zeros, `::` for the longest run of two or more zero groups (the
 * first on a tie) and nowhere else. Compared digit by digit, so the canonical text a hub sends (every
 * IPv6 decision an agent applies) costs no string building.
 */
export function isCanonicalIPv6Words(s: string, words: Int32Array): boolean {
  splitGroups(words);
  const groups = FORMAT_GROUPS;
  const bestStart = ZERO_RUN.start;
  const bestLen = ZERO_RUN.len;
  let at = 0;
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      if (s.charCodeAt(at) !== 58 || s.charCodeAt(at + 1) !== 58) return false;
      at += 2;
      k += bestLen - 1;
      continue;
    }
    // A separator before every group but the first and the one right after `::`.
    if (k > 0 && k !== bestStart + bestLen) {
      if (s.charCodeAt(at) !== 58) return false;
      at++;
    }
    const g = groups[k]!;
    for (let shift = 4 * (hexDigits(g) - 1); shift >= 0; shift -= 4) {
      const d = (g >>> shift) & 15;
      if (s.charCodeAt(at++) !== (d < 10 ? 48 + d : 87 + d)) return false;
    }
  }
  return at === s.length;
}

const ALL_ONES_128 = (1n << 128n) - 1n;

function hostMask(family: 4 | 6, prefix: number): bigint {
  const bits = family === 4 ? 32 : 128;
  return (1n << BigInt(bits - prefix)) - 1n;
}

/**
 * Scratch for moving a 128-bit value between a bigint and bytes or 32-bit words: two 64-bit steps
 * where 32-bit ones took four, and every bigint step allocates (per IPv6 decision, on each agent).
 */
const WIDE = new DataView(new ArrayBuffer(16));
const WIDE_BYTES = new Uint8Array(WIDE.buffer);

/** The 128-bit value of four 32-bit words, most significant first. */
function wordsValue(w: Int32Array): bigint {
  WIDE.setInt32(0, w[0]!);
  WIDE.setInt32(4, w[1]!);
  WIDE.setInt32(8, w[2]!);
  WIDE.setInt32(12, w[3]!);
  return (WIDE.getBigUint64(0) << 64n) | WIDE.getBigUint64(8);
}

/** Writes `v` as `bytes` bytes big-endian (network order) into `out` at `at`. */
export function writeBigEndian(v: bigint, out: Uint8Array, at: number, bytes: number): void {
  if (bytes === 16) {
    // setBigUint64 keeps the low 64 bits of what it is given.
    WIDE.setBigUint64(0, v >> 64n);
    WIDE.setBigUint64(8, v);
    for (let k = 0; k < 16; k++) out[at + k] = WIDE_BYTES[k]!;
    return;
  }
  // Other widths by 32-bit words: a quarter of the bigint steps of going byte by byte.
  if (bytes % 4 === 0) {
    for (let i = at + bytes - 4; i >= at; i -= 4) {
      const w = Number(BigInt.asUintN(32, v));
      out[i] = w >>> 24;
      out[i + 1] = (w >>> 16) & 255;
      out[i + 2] = (w >>> 8) & 255;
      out[i + 3] = w & 255;
      v >>= 32n;
    }
    return;
  }
  for (let i = at + bytes - 1; i >= at; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** The canonical target for `value` masked to `prefix` bits. */
export function makeTarget(family: 4 | 6, value: bigint, prefix: number): Target {
  const bits = family === 4 ? 32 : 128;
  const mask = hostMask(family, prefix);
  const first = value & ~mask & (family === 4 ? 0xffffffffn : ALL_ONES_128);
  const last = first | mask;
  const addr = family === 4 ? formatIPv4(Number(first)) : formatIPv6(first);
  return { family, prefix, first, last, text: prefix === bits ? addr : `${addr}/${prefix}` };
}

/** parseTarget's scratch words for the IPv6 host path (single-threaded, never held across calls). */
const WORDS = new Int32Array(4);

export interface ParseTargetOptions {
  /** What to do when a CIDR has host bits set: mask them (and call `onWarning`) or refuse. */
  hostBits?: 'mask' | 'reject';
  onWarning?: (message: string) => void;
}

/**
 * Parses an address or CIDR into its canonical form. IPv4-mapped IPv6 (`::ffff:192.0.2.1`)
 * becomes plain IPv4, so one attacker is one entry whichever way a log spelled it.
 */
export function parseTarget(input: string, opts: ParseTargetOptions = {}): Target {
  // A plain IPv4 host (every decision a hub sends for one): parseIPv4 is strict, so the input is
  // already the canonical text; no trimming, masking or formatting (ADR 0044: per decision on
  // the agent's bus path). Same shape as makeTarget's objects.
  const quad = parseIPv4(input);
  if (quad !== null) {
    const v = BigInt(quad);
    return new ParsedHost(4, 32, v, v, input);
  }
  // A plain IPv6 host of hex groups, the same way: four words, one bigint, and the canonical text
  // (the input itself when it already is, else written from the words; no splits, regexes or
  // group arrays). IPv4-mapped forms, ranges, spaces and anything parseIPv6Words does not take
  // go the general way below.
  if (
    input.length <= 39 &&
    parseIPv6Words(input, WORDS) &&
    !(WORDS[0] === 0 && WORDS[1] === 0 && WORDS[2] === 0xffff)
  ) {
    const v = wordsValue(WORDS);
    // The text a hub sends is canonical already: kept as it is, not written again.
    const text = isCanonicalIPv6Words(input, WORDS) ? input : formatIPv6Words(WORDS);
    return new ParsedHost(6, 128, v, v, text);
  }
  const text = input.trim();
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  let family: 4 | 6;
  let value: bigint;
  const v4 = parseIPv4(addrText);
  if (v4 !== null) {
    family = 4;
    value = BigInt(v4);
  } else {
    const v6 = parseIPv6(addrText);
    if (v6 === null) throw new RampartError('E_ADDRESS', `"${clip(input)}" is not an IPv4 or IPv6 address`);
    family = 6;
    value = v6;
  }
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw new RampartError('E_ADDRESS', `"${clip(input)}": prefix must be 0 to ${bits}`);
    }
    prefix = Number(prefixText);
  }
  // ::ffff:a.b.c.d/NN with NN >= 96 is the IPv4 range a.b.c.d/(NN-96).
  if (family === 6 && prefix >= 96 && value >> 32n === 0xffffn) {
    family = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  if ((value & hostMask(family, prefix)) !== 0n) {
    const fixed = makeTarget(family, value, prefix);
    if (opts.hostBits === 'reject') {
      throw new RampartError('E_ADDRESS', `"${clip(input)}" has host bits set; did you mean ${fixed.text}?`);
    }
    opts.onWarning?.(`"${clip(input)}" has host bits set; using ${fixed.text}`);
    return fixed;
  }
  return makeTarget(family, value, prefix);
}

/** Non-throwing variant for hot paths (detection): null when the text is not an address. */
export function tryParseTarget(input: string): Target | null {
  try {
    return parseTarget(input);
  } catch {
    return null;
  }
}

/** Widens an IPv6 host to its /N network (default /64); IPv4 is returned unchanged. */
export function widen(t: Target, prefix6 = 64): Target {
  if (t.family !== 6 || t.prefix <= prefix6) return t;
  return makeTarget(6, t.first, prefix6);
}

export function contains(outer: Target, inner: Target): boolean {
  return outer.family === inner.family && outer.first <= inner.first && inner.last <= outer.last;
}

export interface BannablePolicy {
  /** The broadest prefix that may be banned; default 16 for IPv4 and 32 for IPv6. */
  minPrefix4?: number;
  minPrefix6?: number;
  /** Returns a description of the allowlist entry that covers the target, if any. */
  allowed?: (t: Target) => string | undefined;
}

const NEVER: Array<[Target, string]> = [
  [makeTarget(4, 0x7f000000n, 8), 'loopback'],
  [makeTarget(4, 0n, 8), 'unspecified/"this network"'],
  [makeTarget(6, 1n, 128), 'loopback'],
  [makeTarget(6, 0n, 128), 'unspecified'],
];

/** Throws E_UNBANNABLE when a target must never be banned; returns it otherwise. */
export function assertBannable(t: Target, policy: BannablePolicy = {}): Target {
  const min = t.family === 4 ? (policy.minPrefix4 ?? 16) : (policy.minPrefix6 ?? 32);
  if (t.prefix === 0) {
    throw new RampartError('E_UNBANNABLE', `${t.text} would ban the whole IPv${t.family} internet`);
  }
  if (t.prefix < min) {
    throw new RampartError(
      'E_UNBANNABLE',
      `${t.text} is broader than /${min}, the broadest IPv${t.family} range allowed (minPrefix${t.family})`,
    );
  }
  for (const [net, what] of NEVER) {
    if (net.family === t.family && t.first <= net.last && net.first <= t.last) {
      throw new RampartError('E_UNBANNABLE', `${t.text} is ${what} and is never banned`);
    }
  }
  const hit = policy.allowed?.(t);
  if (hit !== undefined) throw new RampartError('E_UNBANNABLE', `${t.text} is allowlisted (${hit})`);
  return t;
}

export function clip(s: string, max = 80): string {
  const printable = s.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

import { formatIPv4, formatIPv6Words, parseIPv6Words } from '../core/address.js';

/**
 * Canonical text of an IPv6 address written as hex groups (`parseIPv6Words`'s input), without
 * bigints: the same text as `parseTarget(raw).text` (an IPv4-mapped address becomes its IPv4
 * text, as parseTarget makes it), or null when `raw` is not that shape (a dotted-quad tail, a
 * zone, junk): callers then take parseTarget. An attack from 50,000 IPv6 addresses used to thrash
 * a text cache in front of the bigint parser (docs/adr/0032).
 */
export function canonicalV6(raw: string, words: Int32Array = SCRATCH): string | null {
  if (!parseIPv6Words(raw, words)) return null;
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return formatIPv4(words[3]! >>> 0);
  return formatIPv6Words(words);
}

const SCRATCH = new Int32Array(4);

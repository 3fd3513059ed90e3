import { parseTarget, type Target, writeBigEndian } from '../core/address.js';

/**
 * A sortable key for the first address of a target: the family byte, then 16 bytes big-endian
 * (IPv4 right-aligned). SQLite compares BLOBs with memcmp, so `lo BETWEEN key(first) AND
 * key(last)` finds every ban starting inside a range through one index.
 */
export function addressKey(target: string | Target, which: 'first' | 'last' = 'first'): Buffer {
  const t = typeof target === 'string' ? parseTarget(target) : target;
  const out = Buffer.alloc(17);
  out[0] = t.family;
  writeBigEndian(which === 'first' ? t.first : t.last, out, 1, 16);
  return out;
}

/**
 * The canonical text of every network that contains `t` (its supernets, from /0 up to and
 * including `t` itself): with them, "which bans cover this address" is a handful of primary-key
 * lookups instead of a scan.
 */
export function supernets(t: Target): string[] {
  const addr = t.text.split('/')[0]!;
  const out: string[] = [];
  for (let p = 0; p <= t.prefix; p++) out.push(parseTarget(`${addr}/${p}`).text);
  return out;
}

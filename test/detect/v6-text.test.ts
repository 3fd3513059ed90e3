import { describe, expect, it } from 'vitest';
import { tryParseTarget } from '../../src/core/address.js';
import { canonicalV6 } from '../../src/detect/v6-text.js';
import { seededRandom } from '../helpers/seeded-random.js';

/** IPv6 text of hex groups, zero-heavy so that `::` runs, ties and mapped IPv4 all come up. */
function randomV6(rand: () => number): string {
  const groups = Array.from({ length: 8 }, () => {
    const r = rand();
    if (r < 0.45) return 0;
    if (r < 0.5) return 0xffff;
    return Math.floor(rand() * 0x10000);
  });
  if (rand() < 0.1) groups.splice(0, 6, 0, 0, 0, 0, 0, 0xffff);
  const hex = groups.map((g) => {
    const h = g.toString(16).padStart(rand() < 0.2 ? 4 : 1, '0');
    return rand() < 0.3 ? h.toUpperCase() : h;
  });
  // Compress one run of zeros at random, not necessarily the longest: any valid spelling.
  const zero = hex.findIndex((h) => /^0+$/.test(h));
  if (zero >= 0 && rand() < 0.7) {
    let end = zero;
    while (end < 8 && /^0+$/.test(hex[end]!)) end++;
    const cut = zero + Math.floor(rand() * (end - zero)) + 1;
    return `${hex.slice(0, zero).join(':')}::${hex.slice(cut).join(':')}`;
  }
  return hex.join(':');
}

describe('canonicalV6 - IPv6 text without bigints', () => {
  it('gives parseTarget’s canonical text for 20,000 random spellings (mapped IPv4 becomes IPv4)', () => {
    const rand = seededRandom(11);
    let mapped = 0;
    for (let i = 0; i < 20_000; i++) {
      const raw = randomV6(rand);
      const want = tryParseTarget(raw)?.text ?? null;
      expect({ raw, text: canonicalV6(raw) }).toEqual({ raw, text: want });
      if (want !== null && !want.includes(':')) mapped++;
    }
    expect(mapped).toBeGreaterThan(100);
  });

  it('declines what is not hex groups, so callers take the full parser', () => {
    for (const raw of ['::ffff:192.0.2.1', 'fe80::1%eth0', '2001:db8::1:', '1::2::3', 'host', '', ':1:2'])
      expect(canonicalV6(raw)).toBeNull();
    expect(canonicalV6('::')).toBe('::');
    // RFC 5952: lower case, the longest zero run (the first on a tie), never a single zero group.
    expect(canonicalV6('2001:DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonicalV6('0:0:1:0:0:0:1:0')).toBe('0:0:1::1:0');
    expect(canonicalV6('1:0:2:3:4:5:6:7')).toBe('1:0:2:3:4:5:6:7');
    expect(canonicalV6('1:2:3:4:5:6:7:0')).toBe('1:2:3:4:5:6:7:0');
    expect(canonicalV6('0::1')).toBe('::1');
    expect(canonicalV6('::ffff:c000:201')).toBe('192.0.2.1');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeTarget, parseTarget } from '../../src/core/address.js';
import { aggregate, rangeToCidrs } from '../../src/hub/blocklist/aggregate.js';

// A small universe per family (a /24 and a /120) so the oracle can look at every address.
const BASES = { 4: parseTarget('192.0.2.0/24').first, 6: parseTarget('2001:db8::/120').first };
const BITS = { 4: 32, 6: 128 };

const banArb = fc.record({
  family: fc.constantFrom(4 as const, 6 as const),
  offset: fc.integer({ min: 0, max: 255 }),
  size: fc.integer({ min: 0, max: 8 }),
  expiresAt: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: null }),
});

/**
 * The brute-force answer: the covered addresses, and the minimal exact cover, which is every
 * aligned block that is wholly covered while its parent block is not.
 */
function oracle(family: 4 | 6, covered: Set<number>): string[] {
  const blocks: string[] = [];
  const full = (start: number, size: number) => {
    for (let a = start; a < start + size; a++) if (!covered.has(a)) return false;
    return true;
  };
  for (let hostBits = 8; hostBits >= 0; hostBits--) {
    const size = 1 << hostBits;
    for (let start = 0; start < 256; start += size) {
      const parent = size * 2;
      const parentStart = start - (start % parent);
      if (full(start, size) && (hostBits === 8 || !full(parentStart, parent))) {
        blocks.push(makeTarget(family, BASES[family] + BigInt(start), BITS[family] - hostBits).text);
      }
    }
  }
  return blocks;
}

describe('blocklist aggregation', () => {
  it('covers exactly the banned addresses with the fewest CIDRs (property, against a brute-force oracle)', () => {
    fc.assert(
      fc.property(fc.array(banArb, { maxLength: 40 }), (bans) => {
        const spans = bans.map((b) => {
          const start = b.offset - (b.offset % (1 << b.size));
          return {
            target: makeTarget(b.family, BASES[b.family] + BigInt(start), BITS[b.family] - b.size),
            expiresAt: b.expiresAt,
          };
        });
        const merged = aggregate(spans);
        for (const family of [4, 6] as const) {
          const covered = new Set<number>();
          for (const s of spans.filter((x) => x.target.family === family)) {
            for (let a = s.target.first; a <= s.target.last; a++) covered.add(Number(a - BASES[family]));
          }
          const got = merged.filter((m) => m.target.family === family);
          // Exact: every output address was banned and every banned address is output, once.
          const seen = new Set<number>();
          for (const m of got) {
            for (let a = m.target.first; a <= m.target.last; a++) {
              const off = Number(a - BASES[family]);
              expect(covered.has(off)).toBe(true);
              expect(seen.has(off)).toBe(false);
              seen.add(off);
            }
          }
          expect(seen.size).toBe(covered.size);
          expect(got.map((m) => m.target.text).sort()).toEqual(oracle(family, covered).sort());
          // Each merged CIDR ends no later than any ban inside it.
          for (const m of got) {
            for (const s of spans.filter((x) => x.target.family === family)) {
              const inside = s.target.first >= m.target.first && s.target.last <= m.target.last;
              if (inside && s.expiresAt !== null) expect(m.expiresAt).not.toBeNull();
              if (inside && s.expiresAt !== null) expect(m.expiresAt!).toBeLessThanOrEqual(s.expiresAt);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('joins neighbours into their common prefix but never widens past what is banned', () => {
    const t = (s: string, expiresAt: number | null = null) => ({ target: parseTarget(s), expiresAt });
    const out = aggregate([
      t('192.0.2.0/25', 50),
      t('192.0.2.128/25', 20),
      t('198.51.100.1'),
      t('198.51.100.2'),
      t('2001:db8::/64'),
      t('2001:db8:0:1::/64'),
      t('2001:db8::5'),
    ]).map((m) => `${m.target.text}:${m.expiresAt}`);
    expect(out).toEqual(['192.0.2.0/24:20', '198.51.100.1:null', '198.51.100.2:null', '2001:db8::/63:null']);
  });

  it('tiles whole address spaces and odd ranges', () => {
    expect(rangeToCidrs(4, 0n, 0xffffffffn).map((c) => c.text)).toEqual(['0.0.0.0/0']);
    expect(rangeToCidrs(4, 1n, 6n).map((c) => c.text)).toEqual([
      '0.0.0.1',
      '0.0.0.2/31',
      '0.0.0.4/31',
      '0.0.0.6',
    ]);
    expect(rangeToCidrs(6, 0n, (1n << 128n) - 1n).map((c) => c.text)).toEqual(['::/0']);
  });
});

import { describe, expect, it } from 'vitest';
import { PairMap } from '../../src/store/pair-map.js';

describe('PairMap', () => {
  it('keeps (target, set) pairs apart, undefined values included, and lists every value', () => {
    const m = new PairMap<number | undefined>();
    m.set('192.0.2.1', 'blocklist', 1);
    m.set('192.0.2.1', 'web', 2);
    m.set('2001:db8::1', 'blocklist', undefined);
    // Texts a joined key could have confused: a separator inside a part.
    m.set('a\nb', 'c', 3);
    m.set('a', 'b\nc', 4);
    m.set('192.0.2.1', 'blocklist', 5);
    expect(m.get('192.0.2.1', 'blocklist')).toBe(5);
    expect(m.get('192.0.2.1', 'web')).toBe(2);
    expect(m.has('2001:db8::1', 'blocklist')).toBe(true);
    expect(m.get('2001:db8::1', 'blocklist')).toBeUndefined();
    expect(m.has('2001:db8::1', 'web')).toBe(false);
    expect(m.has('192.0.2.2', 'blocklist')).toBe(false);
    expect([m.get('a\nb', 'c'), m.get('a', 'b\nc'), m.get('a', 'b')]).toEqual([3, 4, undefined]);
    expect([...m.values()].sort()).toEqual([2, 3, 4, 5, undefined]);
  });
});

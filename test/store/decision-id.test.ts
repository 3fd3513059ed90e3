import { describe, expect, it } from 'vitest';
import { decisionId } from '../../src/store/decision-id.js';

describe('decision ids (UUID version 7)', () => {
  it('are UUIDs of version 7 with the RFC 9562 variant, the time in their first 48 bits', () => {
    // Later than any clock this test runs at: the first id of this process.
    const t = Date.UTC(2100, 0, 2, 3, 4, 5, 6);
    const id = decisionId(t + 10_000);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(t + 10_000);
  });

  it('sort in the order they were made, also many in one millisecond or with the clock going back', () => {
    const at = Date.UTC(2100, 0, 3);
    const ids = [
      ...Array.from({ length: 10_000 }, () => decisionId(at)),
      // The clock steps back: ids still go up.
      ...Array.from({ length: 100 }, () => decisionId(at - 5_000)),
    ];
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/core/errors.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error codes', () => {
  it('every code raised in src/ is documented in ERROR_CODES', () => {
    const used = new Set<string>();
    for (const file of sources('src')) {
      for (const m of readFileSync(file, 'utf8').matchAll(/['"](E_[A-Z_]+)['"]/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(3);
    const undocumented = [...used].filter((c) => !(c in ERROR_CODES));
    expect(undocumented).toEqual([]);
  });
});

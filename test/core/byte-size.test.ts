import { describe, expect, it } from 'vitest';
import { rampartConfigSchema } from '../../src/config/schema.js';
import { parseByteSize } from '../../src/core/byte-size.js';

describe('parseByteSize', () => {
  it('reads bytes, binary and decimal units, case-insensitively', () => {
    expect(parseByteSize(1000)).toBe(1000);
    expect(parseByteSize('64MiB')).toBe(64 * 1024 * 1024);
    expect(parseByteSize('1.5 GB')).toBe(1_500_000_000);
    expect(parseByteSize('500kb')).toBe(500_000);
    expect(parseByteSize('42')).toBe(42);
  });

  it('refuses what is not a size', () => {
    for (const bad of ['', 'MiB', '-1MiB', '12 parsecs', '1e9', Number.NaN, -5, Number.POSITIVE_INFINITY]) {
      expect(parseByteSize(bad as string | number)).toBeNull();
    }
  });

  it('rules.trackerMemory: default 128 MiB, a bad value names the key', () => {
    expect(rampartConfigSchema.parse({}).rules.trackerMemory).toBe(128 * 1024 * 1024);
    expect(rampartConfigSchema.parse({ rules: { trackerMemory: '32MiB' } }).rules.trackerMemory).toBe(
      32 << 20,
    );
    const r = rampartConfigSchema.safeParse({ rules: { trackerMemory: 'lots' } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['rules', 'trackerMemory']);
  });
});

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = pathToFileURL(resolve('dist/core/release-memory.js')).href;

/**
 * Runs `script` in a child node started as rampart's processes are (young generation capped at
 * 2 × 4 MiB), after garbage that grows new space to that cap; prints JSON.
 */
function child(script: string): { before: number; after: number; ran: boolean } {
  const out = execFileSync(
    process.execPath,
    ['--max-semi-space-size=4', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return JSON.parse(out.trim().split('\n').pop()!);
}

const GROW_NEW_SPACE = `
  const { getHeapSpaceStatistics } = await import('node:v8');
  const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
  let keep = [];
  for (let i = 0; i < 300000; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 50000) keep = []; }
  keep = null;
`;

describe('releaseStartupMemory', () => {
  it('shrinks a young generation grown to its cap, and the process goes on and exits', () => {
    const r = child(`${GROW_NEW_SPACE}
      const { releaseStartupMemory } = await import(${JSON.stringify(MODULE)});
      const before = newSpace();
      const ran = await releaseStartupMemory();
      await new Promise((r) => setTimeout(r, 50));
      console.log(JSON.stringify({ before, after: newSpace(), ran }));
    `);
    expect(r.ran).toBe(true);
    expect(r.before).toBeGreaterThanOrEqual(4 * 1024 * 1024);
    expect(r.after).toBeLessThanOrEqual(r.before / 4);
  });

  it('does nothing while the live heap is large (a restore that held many bans)', () => {
    const r = child(`${GROW_NEW_SPACE}
      const { releaseStartupMemory } = await import(${JSON.stringify(MODULE)});
      const held = Array.from({ length: 600000 }, (_, i) => ({ i, s: 'held' + i }));
      const before = newSpace();
      const ran = await releaseStartupMemory();
      console.log(JSON.stringify({ before, after: newSpace(), ran, held: held.length }));
    `);
    expect(r.ran).toBe(false);
    expect(r.after).toBe(r.before);
  });
});

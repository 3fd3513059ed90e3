import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandGlob, globBase, segmentRegExp } from '../../src/sources/glob.js';
import { tempDir } from './helpers.js';

describe('glob', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('glob');
    for (const d of ['a', 'b', '.hidden']) {
      mkdirSync(tmp.path(d));
      writeFileSync(tmp.path(`${d}/access.log`), '');
      writeFileSync(tmp.path(`${d}/access.log.1`), '');
    }
    mkdirSync(tmp.path('a/dir.log'));
  });
  afterAll(async () => {
    await tmp.remove();
  });

  it('expands wildcards per segment, files only, hidden entries only when asked, sorted', async () => {
    expect(await expandGlob(tmp.path('*/*.log'))).toEqual([
      tmp.path('a/access.log'),
      tmp.path('b/access.log'),
    ]);
    expect(await expandGlob(tmp.path('.*/access.log'))).toEqual([tmp.path('.hidden/access.log')]);
    expect(await expandGlob(tmp.path('[!b]/access.log?1'))).toEqual([tmp.path('a/access.log.1')]);
    expect(await expandGlob(tmp.path('nope/*.log'))).toEqual([]);
  });

  it('regex metacharacters in names are literal; the watch base is the last literal directory', () => {
    expect(segmentRegExp('a+(b).log').test('a+(b).log')).toBe(true);
    expect(segmentRegExp('a+(b).log').test('aa(b)xlog')).toBe(false);
    expect(segmentRegExp('[a-c]*').test('cat')).toBe(true);
    expect(globBase('/var/log/nginx/*.log')).toBe('/var/log/nginx');
    expect(globBase('/srv/*/logs/a.log')).toBe('/srv');
  });
});

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as fromSources from '../../src/detect/builtin-snapshot.js';
import { builtinRule, builtinRuleNames, builtinRules } from '../../src/detect/rules-file.js';

const BUILT = fileURLToPath(new URL('../../dist/detect/builtin-snapshot.js', import.meta.url));

describe('built-in rules snapshot', () => {
  it("the build's snapshot gives exactly what the YAML loader gives, normal and aggressive", async () => {
    if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: run npm run build first`);
    const built = (await import(BUILT)) as typeof fromSources;
    for (const aggressive of [false, true]) {
      expect(await built.snapshotBuiltinRules({ aggressive })).toEqual(builtinRules({ aggressive }));
      for (const n of builtinRuleNames()) {
        expect(await built.snapshotBuiltinRule(n, { aggressive })).toEqual(builtinRule(n, { aggressive }));
      }
    }
    await expect(built.snapshotBuiltinRule('nope')).rejects.toThrow(/no built-in rule "nope"/);
  });

  it('without a snapshot (running from the sources) it loads the YAML', async () => {
    expect(await fromSources.snapshotBuiltinRules()).toEqual(builtinRules());
    expect(await fromSources.snapshotBuiltinRule('sshd', { aggressive: true })).toEqual(
      builtinRule('sshd', { aggressive: true }),
    );
  });
});

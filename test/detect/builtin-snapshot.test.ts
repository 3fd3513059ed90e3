import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

  it('a snapshot older than the rules files is not used (edited, renamed or added file)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-snapshot-'));
    try {
      const rules = join(dir, 'rules');
      mkdirSync(rules);
      writeFileSync(join(rules, 'a.yaml'), 'name: a\nmaxretry: 5\n');
      writeFileSync(join(rules, 'notes.txt'), 'not a rule');
      const rulesUrl = pathToFileURL(`${rules}/`);
      const file = pathToFileURL(join(dir, 'snap.json'));
      const snap = { hash: fromSources.rulesHash(rulesUrl), all: [[], []], byName: {} };
      writeFileSync(file, JSON.stringify(snap));
      expect(fromSources.readSnapshot(file, rulesUrl)).toEqual(snap);
      // Only *.yaml counts.
      writeFileSync(join(rules, 'notes.txt'), 'still not a rule');
      expect(fromSources.readSnapshot(file, rulesUrl)).toEqual(snap);
      writeFileSync(join(rules, 'a.yaml'), 'name: a\nmaxretry: 6\n');
      expect(fromSources.readSnapshot(file, rulesUrl)).toBeNull();
      writeFileSync(join(rules, 'a.yaml'), 'name: a\nmaxretry: 5\n');
      expect(fromSources.readSnapshot(file, rulesUrl)).toEqual(snap);
      renameSync(join(rules, 'a.yaml'), join(rules, 'b.yaml'));
      expect(fromSources.readSnapshot(file, rulesUrl)).toBeNull();
      renameSync(join(rules, 'b.yaml'), join(rules, 'a.yaml'));
      writeFileSync(join(rules, 'c.yaml'), '');
      expect(fromSources.readSnapshot(file, rulesUrl)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadYamlFile, parseYamlText } from '../../src/core/config-file.js';

const schema = z.object({
  rules: z.array(z.object({ name: z.string(), maxretry: z.number().int().positive() }).strict()),
});

describe('config files', () => {
  it('names the file, the line and the key of a wrong value', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-cfg-'));
    try {
      const file = join(dir, 'rampart.yaml');
      writeFileSync(file, 'rules:\n  - name: sshd\n    maxretry: 5\n  - name: web\n    maxretry: many\n');
      expect(() => loadYamlFile(file, schema)).toThrow(`${file}:5: rules.1.maxretry:`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports YAML syntax errors with their line', () => {
    expect(() => parseYamlText('rules:\n  - name: [unclosed\n', schema, 'x.yaml')).toThrow(
      /^x\.yaml:\d+: invalid YAML/,
    );
  });

  it('refuses a YAML alias bomb as a config error, not a crash', () => {
    // Found by test/fuzz/config-files.test.ts (seed 2129605604): three lines of aliases that
    // unfold into 1,000 nodes made the yaml package throw a bare ReferenceError.
    const bomb = [
      'a0: &a0 [x, x, x, x, x, x, x, x, x, x]',
      'a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]',
      'a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]',
      'rules: *a2',
    ].join('\n');
    expect(() => parseYamlText(bomb, schema, 'bomb.yaml')).toThrow(
      /^bomb\.yaml: invalid YAML: Excessive alias/,
    );
  });

  it('reports unknown keys and duplicate keys', () => {
    expect(() =>
      parseYamlText('rules:\n  - name: a\n    maxretry: 1\n    bantim: 1h\n', schema, 'y.yaml'),
    ).toThrow(/y\.yaml:4: rules\.0\.bantim: unknown key \(a typo\?\)/);
    expect(() => parseYamlText('rules: []\nrules: []\n', schema, 'z.yaml')).toThrow(
      /z\.yaml:2: invalid YAML/,
    );
  });

  it('reports a missing file clearly', () => {
    expect(() => loadYamlFile('/nonexistent/rampart.yaml', schema)).toThrow(
      '/nonexistent/rampart.yaml: cannot read: no such file (ENOENT)',
    );
  });

  it('returns the validated value', () => {
    expect(parseYamlText('rules:\n  - name: a\n    maxretry: 3\n', schema)).toEqual({
      rules: [{ name: 'a', maxretry: 3 }],
    });
  });
});

import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RuleSpec } from './rule.js';
import type { LoadRulesOptions } from './rules-file.js';

/**
 * The built-in rules without the YAML parser and the schema library: `npm run build` writes them,
 * already validated, to `dist/builtin-rules.json`, with a hash of `rules/*.yaml`. A replay with
 * the built-in rules then starts about 20 MB and a tenth of a second lighter (`rampart check`
 * is measured whole process against sshguard's parser). A missing or stale snapshot (a rules
 * file edited after the build, or running from the sources) falls back to loading the YAML.
 * The staleness check is a plain hash, not node:crypto: loading that module cost the replay
 * ≈ 1.5 MB of its peak resident memory, and nothing here is adversarial (who can edit the rules
 * can edit the snapshot).
 */
const SNAPSHOT = new URL('../builtin-rules.json', import.meta.url);
const RULES_DIR = new URL('../../rules/', import.meta.url);

export interface Snapshot {
  hash: string;
  /** What `builtinRules` returns: [normal, aggressive]. */
  all: [RuleSpec[], RuleSpec[]];
  /** What `builtinRule(name)` returns: name → [normal, aggressive]. */
  byName: Record<string, [RuleSpec, RuleSpec]>;
}

/** Every built-in rule (as `builtinRules` of rules-file). */
export async function snapshotBuiltinRules(opts: LoadRulesOptions = {}): Promise<RuleSpec[]> {
  const snap = readSnapshot();
  if (snap === null) return (await import('./rules-file.js')).builtinRules(opts);
  return snap.all[opts.aggressive ? 1 : 0];
}

/** One built-in rule by name (as `builtinRule` of rules-file, errors included). */
export async function snapshotBuiltinRule(name: string, opts: LoadRulesOptions = {}): Promise<RuleSpec> {
  const snap = readSnapshot();
  if (snap === null || !Object.hasOwn(snap.byName, name)) {
    return (await import('./rules-file.js')).builtinRule(name, opts);
  }
  return snap.byName[name]![opts.aggressive ? 1 : 0];
}

/** The snapshot when it was made from the rules files as they are now, else null. */
export function readSnapshot(file: URL = SNAPSHOT, rulesDir: URL = RULES_DIR): Snapshot | null {
  if (!existsSync(file)) return null;
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    return snap.hash === rulesHash(rulesDir) ? snap : null;
  } catch {
    return null;
  }
}

/**
 * A hash of the names and contents of `rules/*.yaml`: two 32-bit FNV-1a lanes of different
 * offsets and a length, so an edit, a rename or an added file changes it.
 */
export function rulesHash(rulesDir: URL = RULES_DIR): string {
  let a = 0x811c9dc5;
  let b = 0x5bd1e995;
  let n = 0;
  const add = (bytes: Uint8Array) => {
    for (let i = 0; i < bytes.length; i++) {
      a = Math.imul(a ^ bytes[i]!, 0x01000193);
      b = Math.imul(b ^ bytes[i]!, 0x01000193) ^ (b >>> 15);
    }
    n += bytes.length;
  };
  const dir = fileURLToPath(rulesDir);
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    add(Buffer.from(`${f}\0`));
    add(readFileSync(`${dir}${f}`));
    add(ZERO);
  }
  return `${(a >>> 0).toString(16)}-${(b >>> 0).toString(16)}-${n}`;
}

const ZERO = new Uint8Array(1);

/** Writes the snapshot (run by `npm run build`, after tsc). */
export async function writeBuiltinSnapshot(): Promise<void> {
  const { builtinRule, builtinRuleNames, builtinRules } = await import('./rules-file.js');
  const aggressive = { aggressive: true };
  const byName: Snapshot['byName'] = {};
  for (const n of builtinRuleNames()) byName[n] = [builtinRule(n), builtinRule(n, aggressive)];
  const snap: Snapshot = { hash: rulesHash(), all: [builtinRules(), builtinRules(aggressive)], byName };
  writeFileSync(SNAPSHOT, `${JSON.stringify(snap)}\n`);
}

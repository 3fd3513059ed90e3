import { createHash } from 'node:crypto';
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
 */
const SNAPSHOT = new URL('../builtin-rules.json', import.meta.url);
const RULES_DIR = new URL('../../rules/', import.meta.url);

interface Snapshot {
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

function readSnapshot(): Snapshot | null {
  if (!existsSync(SNAPSHOT)) return null;
  try {
    const snap = JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as Snapshot;
    return snap.hash === rulesHash() ? snap : null;
  } catch {
    return null;
  }
}

/** Names and contents of `rules/*.yaml`. */
function rulesHash(): string {
  const h = createHash('sha256');
  const dir = fileURLToPath(RULES_DIR);
  for (const f of readdirSync(dir)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    h.update(`${f}\0`);
    h.update(readFileSync(`${dir}${f}`));
    h.update('\0');
  }
  return h.digest('hex');
}

/** Writes the snapshot (run by `npm run build`, after tsc). */
export async function writeBuiltinSnapshot(): Promise<void> {
  const { builtinRule, builtinRuleNames, builtinRules } = await import('./rules-file.js');
  const aggressive = { aggressive: true };
  const byName: Snapshot['byName'] = {};
  for (const n of builtinRuleNames()) byName[n] = [builtinRule(n), builtinRule(n, aggressive)];
  const snap: Snapshot = { hash: rulesHash(), all: [builtinRules(), builtinRules(aggressive)], byName };
  writeFileSync(SNAPSHOT, `${JSON.stringify(snap)}\n`);
}

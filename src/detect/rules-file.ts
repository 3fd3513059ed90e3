import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { tryParseTarget } from '../core/address.js';
import { parseYamlText, readConfigText } from '../core/config-file.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError, RampartError } from '../core/errors.js';
import { isSetName, SET_NAME_RULE } from '../core/set-name.js';
import { nestedRepeat } from './pattern-shape.js';
import { expandPlaceholders } from './placeholders.js';
import { compileUserRegex } from './regex-safety.js';
import { RULE_DEFAULTS, type RuleSpec } from './rule.js';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const pattern = z.string().superRefine((p, ctx) => {
  try {
    compileUserRegex(expandPlaceholders(p).source, 'pattern', { shown: p });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const addressPattern = pattern.refine((p) => expandPlaceholders(p).hasAddress, {
  message: 'pattern has no address placeholder (<HOST>, <ADDR>, <IP4>, <IP6>, {IP_NUMBER} or (?<ip>...))',
});

const cidr = z
  .string()
  .refine((s) => tryParseTarget(s) !== null, { message: 'not an IPv4/IPv6 address or CIDR' });

const ruleSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'use letters, digits, _ . -'),
    sources: z.array(z.string()).default([]),
    prefilter: z.array(z.string().min(1)).optional(),
    prefregex: pattern.optional(),
    patterns: z.array(addressPattern).min(1),
    aggressivePatterns: z.array(addressPattern).default([]),
    aggressive: z.boolean().default(false),
    ignore: z.array(pattern).default([]),
    good: z.array(addressPattern).default([]),
    // Each tracked address keeps up to maxretry timestamps: the bound keeps memory bounded too.
    maxretry: z.number().int().min(1).max(10_000).default(RULE_DEFAULTS.maxretry),
    findtime: duration.default(RULE_DEFAULTS.findtime),
    bantime: duration.default(RULE_DEFAULTS.bantime),
    escalation: z.strictObject({ multiplier: z.number().min(1), max: duration }).optional(),
    widen6: z.number().int().min(32).max(128).optional(),
    ignoreNets: z.array(cidr).default([]),
    set: z
      .string()
      .refine(isSetName, { message: `must be ${SET_NAME_RULE}` })
      .default(RULE_DEFAULTS.set),
    resetConnections: z.boolean().optional(),
    reason: z.string().optional(),
    fleet: z
      .strictObject({
        maxretry: z.number().int().min(1).max(100_000),
        findtime: duration.refine((s) => s !== null && s > 0, { message: 'must be a finite duration' }),
      })
      .optional(),
    // Accept patterns pattern-shape.ts reports (the engine's time budget still applies).
    allowSlowPatterns: z.boolean().default(false),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.allowSlowPatterns) return;
    const lists = {
      patterns: r.patterns,
      aggressivePatterns: r.aggressivePatterns,
      ignore: r.ignore,
      good: r.good,
    };
    const all: Array<[(string | number)[], string]> = Object.entries(lists).flatMap(([key, list]) =>
      list.map((p, i): [(string | number)[], string] => [[key, i], p]),
    );
    if (r.prefregex !== undefined) all.push([['prefregex'], r.prefregex]);
    for (const [path, p] of all) {
      const shape = nestedRepeat(p);
      if (shape === null) continue;
      ctx.addIssue({
        code: 'custom',
        path,
        message: `rule "${r.name}": /${p.length > 200 ? `${p.slice(0, 200)}…` : p}/ repeats ${shape}, a group holding an unbounded repeat, which backtracks super-linearly on long lines (seconds a line); rewrite it (a narrower class such as [^ ]* instead of .*, no repeated group around .*) or set allowSlowPatterns: true on the rule`,
      });
    }
  });

const fileSchema = z.strictObject({ rules: z.array(ruleSchema).min(1) });

type RuleEntry = z.output<typeof ruleSchema>;

export interface LoadRulesOptions {
  /** Count the rules' `aggressivePatterns` too (e.g. failed publickey for sshd). */
  aggressive?: boolean;
}

/**
 * Loads a native rules file (`rules: [...]`). Every error, including an invalid or unsafe
 * pattern, names the file, the line and the key.
 */
export function loadRulesFile(path: string, opts: LoadRulesOptions = {}): RuleSpec[] {
  return parseRulesText(readConfigText(path), path, opts);
}

/** {@link loadRulesFile} on text already read; `path` names it in errors. */
export function parseRulesText(text: string, path: string, opts: LoadRulesOptions = {}): RuleSpec[] {
  const parsed = parseYamlText(text, fileSchema, path);
  const seen = new Set<string>();
  return parsed.rules.map((r, i) => {
    if (seen.has(r.name))
      throw new ConfigError(`duplicate rule name "${r.name}"`, { file: path, key: `rules.${i}.name` });
    seen.add(r.name);
    return toSpec(r, `${path}#${r.name}`, opts);
  });
}

function toSpec(r: RuleEntry, origin: string, opts: LoadRulesOptions): RuleSpec {
  const aggressive = opts.aggressive || r.aggressive;
  const spec: RuleSpec = {
    name: r.name,
    sources: r.sources,
    patterns: aggressive ? [...r.patterns, ...r.aggressivePatterns] : r.patterns,
    ignore: r.ignore,
    good: r.good,
    maxretry: r.maxretry,
    findtime: r.findtime ?? RULE_DEFAULTS.findtime,
    bantime: r.bantime,
    ignoreNets: r.ignoreNets,
    set: r.set,
    origin,
  };
  if (r.prefregex !== undefined) spec.prefregex = r.prefregex;
  if (r.prefilter !== undefined) spec.prefilter = r.prefilter;
  if (r.escalation !== undefined) spec.escalation = r.escalation;
  if (r.widen6 !== undefined) spec.widen6 = r.widen6;
  if (r.resetConnections !== undefined) spec.resetConnections = r.resetConnections;
  if (r.reason !== undefined) spec.reason = r.reason;
  if (r.fleet !== undefined)
    spec.fleet = { maxretry: r.fleet.maxretry, findtime: r.fleet.findtime as number };
  return spec;
}

/** The folder of built-in rules shipped with the package (`rules/`). */
export function builtinRulesDir(): string {
  return fileURLToPath(new URL('../../rules/', import.meta.url));
}

/** Names of the built-in rules (file names in `rules/` without `.yaml`). */
export function builtinRuleNames(): string[] {
  return readdirSync(builtinRulesDir())
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** Every built-in rule (sshd, postfix-sasl, dovecot, nginx-http-auth, nginx-4xx). */
export function builtinRules(opts: LoadRulesOptions = {}): RuleSpec[] {
  return builtinRuleNames().flatMap((n) => loadBuiltinFile(n, opts));
}

/** One built-in rule by name; E_USAGE naming the available ones when unknown. */
export function builtinRule(name: string, opts: LoadRulesOptions = {}): RuleSpec {
  const names = builtinRuleNames();
  if (!names.includes(name)) {
    throw new RampartError('E_USAGE', `no built-in rule "${name}" (available: ${names.join(', ')})`);
  }
  const specs = loadBuiltinFile(name, opts);
  const spec = specs.find((s) => s.name === name) ?? specs[0]!;
  return spec;
}

function loadBuiltinFile(name: string, opts: LoadRulesOptions): RuleSpec[] {
  return loadRulesFile(`${builtinRulesDir()}${name}.yaml`, opts).map((s) => ({ ...s, trusted: true }));
}

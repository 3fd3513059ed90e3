import { accessSync, constants, statSync } from 'node:fs';
import { checkYamlText, readConfigText } from '../core/config-file.js';
import { ConfigError, RampartError } from '../core/errors.js';
import { fsReason } from '../core/fs-error.js';
import { rampartConfigSchema } from './schema.js';

/** One finding of `rampart config check`, already worded as `file:line: key: message`. */
export interface ConfigFinding {
  level: 'error' | 'warn';
  file: string;
  line?: number;
  key?: string;
  message: string;
  text: string;
}

export interface ConfigCheckResult {
  file: string;
  ok: boolean;
  /** The rule files that loaded, for the summary. */
  ruleFiles: string[];
  findings: ConfigFinding[];
}

/**
 * Keys of rampart.yaml that name a file the daemons read at start: a missing one is an error
 * now rather than at 3 a.m. when the service restarts. `*` walks an array.
 */
const READ_AT_START: ReadonlyArray<ReadonlyArray<string>> = [
  ['firewall', 'command', 'file'],
  ['bus', 'passwordFile'],
  ['bus', 'credsFile'],
  ['bus', 'nkeyFile'],
  ['bus', 'tls', 'ca'],
  ['bus', 'tls', 'cert'],
  ['bus', 'tls', 'key'],
  ['hub', 'tls', 'cert'],
  ['hub', 'tls', 'key'],
];

/** Log files may appear after the agent starts (it waits for them): only a warning. */
const LOGS: ReadonlyArray<ReadonlyArray<string>> = [
  ['agent', 'watch', '*'],
  ['agent', 'fail2banLog', '*'],
];

/**
 * Validates a rampart.yaml the way `rampart agent|hub|up` load it, but reports every problem at
 * once instead of stopping at the first: schema issues, built-in rule names, every rule file it
 * references (loaded with the real loader) and the files the daemons read at start.
 */
export async function checkConfigFile(file: string): Promise<ConfigCheckResult> {
  const findings: ConfigFinding[] = [];
  const add = (
    level: ConfigFinding['level'],
    err: ConfigError | RampartError,
    where?: Partial<ConfigFinding>,
  ) => {
    const c = err instanceof ConfigError ? err : undefined;
    const f = where?.file ?? c?.file ?? file;
    const line = where?.line ?? c?.line;
    const key = where?.key ?? c?.key;
    // A ConfigError's message already carries file:line: key; anything else gets them added.
    const text =
      c && !where
        ? err.message
        : `${[f, line].filter((x) => x !== undefined).join(':')}: ${key ? `${key}: ` : ''}${err.message}`;
    findings.push({ level, file: f, line, key, message: err.message, text });
  };
  const result: ConfigCheckResult = { file, ok: false, ruleFiles: [], findings };
  let text: string;
  try {
    text = readConfigText(file);
  } catch (err) {
    add('error', err as ConfigError);
    return result;
  }
  const checked = checkYamlText(text, rampartConfigSchema, file);
  for (const e of checked.errors) add('error', e);
  const cfg = checked.value;
  if (cfg) {
    const { builtinRule, loadRulesFile } = await import('../detect/rules-file.js');
    const opts = { aggressive: cfg.rules.aggressive };
    cfg.rules.builtin.forEach((name, i) => {
      try {
        builtinRule(name, opts);
      } catch (err) {
        const key = `rules.builtin.${i}`;
        add('error', err as RampartError, { file, key, line: checked.lineOf(['rules', 'builtin', i]) });
      }
    });
    cfg.rules.files.forEach((ruleFile, i) => {
      try {
        loadRulesFile(ruleFile, opts);
        result.ruleFiles.push(ruleFile);
      } catch (err) {
        // A problem inside the rule file is reported there; a missing file where it is listed.
        if (err instanceof ConfigError && err.file === ruleFile && err.line !== undefined) add('error', err);
        else
          add('error', err as RampartError, {
            file,
            key: `rules.files.${i}`,
            line: checked.lineOf(['rules', 'files', i]),
          });
      }
    });
    const raw = cfg as unknown as Record<string, unknown>;
    for (const [path, value] of valuesAt(raw, READ_AT_START)) {
      const problem = unreadable(value);
      if (problem) add('error', new RampartError('E_CONFIG', `${value}: ${problem}`), at(path));
    }
    for (const [path, value] of valuesAt(raw, LOGS)) {
      const problem = unreadable(value);
      if (problem)
        add('warn', new RampartError('E_CONFIG', `${value}: ${problem} (the agent waits for it)`), at(path));
    }
  }
  function at(path: Array<string | number>): Partial<ConfigFinding> {
    return { file, key: path.join('.'), line: checked.lineOf(path) };
  }
  result.ok = !findings.some((f) => f.level === 'error');
  return result;
}

function unreadable(path: string): string | undefined {
  try {
    if (statSync(path).isDirectory()) return 'it is a folder, not a file';
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (err) {
    return fsReason(err);
  }
}

function* valuesAt(
  root: Record<string, unknown>,
  paths: ReadonlyArray<ReadonlyArray<string>>,
): Generator<[Array<string | number>, string]> {
  for (const path of paths) yield* walk(root, path, []);
}

function* walk(
  node: unknown,
  rest: ReadonlyArray<string>,
  done: Array<string | number>,
): Generator<[Array<string | number>, string]> {
  if (rest.length === 0) {
    if (typeof node === 'string') yield [done, node];
    return;
  }
  const [head, ...tail] = rest;
  if (head === '*') {
    if (Array.isArray(node)) for (const [i, v] of node.entries()) yield* walk(v, tail, [...done, i]);
    return;
  }
  if (node && typeof node === 'object')
    yield* walk((node as Record<string, unknown>)[head!], tail, [...done, head!]);
}

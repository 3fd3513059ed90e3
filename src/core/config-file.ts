import { readFileSync } from 'node:fs';
import { isMap, isNode, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';
import { fsReason } from './fs-error.js';

/**
 * Reads a YAML file and validates it against a zod schema. Every error names the file, the line
 * and the dotted key, e.g. `/etc/rampart/rampart.yaml:12: rules.0.maxretry: expected a number`,
 * so an operator can go straight to the mistake.
 */
export function loadYamlFile<S extends z.ZodType>(file: string, schema: S): z.output<S> {
  return parseYamlText(readConfigText(file), schema, file);
}

/** Reads a file an operator gave us (`-` = standard input); failure is one ConfigError naming it. */
export function readConfigText(file: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read: ${fsReason(err)}`, { file }, { cause: err });
  }
}

export function parseYamlText<S extends z.ZodType>(text: string, schema: S, file = '<config>'): z.output<S> {
  const checked = checkYamlText(text, schema, file);
  if (checked.errors.length > 0) throw checked.errors[0]!;
  return checked.value as z.output<S>;
}

/** Every problem of a YAML document at once (`rampart config check`), and where its keys are. */
export interface YamlCheck<T> {
  /** The validated value; undefined when there are errors. */
  value: T | undefined;
  /** YAML syntax errors, else every schema issue, each naming file, line and key. */
  errors: ConfigError[];
  /** The line of a key path in the document (1-based), or of its nearest existing parent. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

export function checkYamlText<S extends z.ZodType>(
  text: string,
  schema: S,
  file = '<config>',
): YamlCheck<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (path: ReadonlyArray<string | number>) => lineOf(doc, path.map(String), lineCounter);
  if (doc.errors.length > 0) {
    const errors = doc.errors.map((e) => {
      const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
      return new ConfigError(`invalid YAML: ${e.message.split('\n')[0]}`, { file, line });
    });
    return { value: undefined, errors, lineOf: at };
  }
  let value: unknown;
  try {
    value = doc.toJS() ?? {};
  } catch (err) {
    // The yaml package refuses to unfold aliases past a bound (a "billion laughs" file) by
    // throwing a ReferenceError: still the operator's file at fault, so name it.
    return {
      value: undefined,
      errors: [new ConfigError(`invalid YAML: ${(err as Error).message}`, { file }, { cause: err })],
      lineOf: at,
    };
  }
  const result = schema.safeParse(value);
  if (result.success) return { value: result.data, errors: [], lineOf: at };
  const errors = result.error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // An unknown key is reported at its own line, named, so a typo is found at once.
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    return keys.map((k) => {
      const where = k === undefined ? path : [...path, k];
      const message = k === undefined ? issue.message : 'unknown key (a typo?)';
      return new ConfigError(message, { file, line: at(where), key: where.join('.') || undefined });
    });
  });
  return { value: undefined, errors, lineOf: at };
}

/** The line of the deepest node along `path` that exists in the document (1-based). */
function lineOf(doc: ReturnType<typeof parseDocument>, path: string[], lc: LineCounter): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const keys = path.slice(0, depth).map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    // The key's own line when the path ends at a key (`agent:`'s value starts on the next line);
    // for a missing key, where its parent's content starts.
    const parent = depth <= 1 ? doc.contents : doc.getIn(keys.slice(0, -1), true);
    if (depth > 0 && depth === path.length && isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(keys.at(-1)));
      if (pair && isScalar(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]).line;
    }
    const node = depth === 0 ? doc.contents : doc.getIn(keys, true);
    if (isNode(node) && (node as Node).range) return lc.linePos((node as Node).range![0]).line;
  }
  return undefined;
}

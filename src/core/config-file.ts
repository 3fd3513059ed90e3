import { readFileSync } from 'node:fs';
import { isNode, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors.js';

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
    throw new ConfigError(
      `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { file },
      { cause: err },
    );
  }
}

export function parseYamlText<S extends z.ZodType>(text: string, schema: S, file = '<config>'): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line;
    throw new ConfigError(`invalid YAML: ${e.message.split('\n')[0]}`, { file, line });
  }
  let value: unknown;
  try {
    value = doc.toJS() ?? {};
  } catch (err) {
    // The yaml package refuses to unfold aliases past a bound (a "billion laughs" file) by
    // throwing a ReferenceError: still the operator's file at fault, so name it.
    throw new ConfigError(`invalid YAML: ${(err as Error).message}`, { file }, { cause: err });
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  const line = lineOf(doc, path, lineCounter);
  throw new ConfigError(issue.message, { file, line, key: path.join('.') || undefined });
}

/** The line of the deepest node along `path` that exists in the document (1-based). */
function lineOf(doc: ReturnType<typeof parseDocument>, path: string[], lc: LineCounter): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const keys = path.slice(0, depth).map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    const node = depth === 0 ? doc.contents : doc.getIn(keys, true);
    if (isNode(node) && (node as Node).range) return lc.linePos((node as Node).range![0]).line;
  }
  return undefined;
}

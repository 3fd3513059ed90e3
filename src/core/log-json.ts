/**
 * The fields of a log line as JSON text, whatever the values are. Log lines carry what attackers
 * wrote (log lines, request bodies), and a logger that throws or loops takes the daemon down with
 * it: nothing here throws. Strings go through JSON.stringify, so newlines and control characters
 * stay escaped and one record is always one line.
 */

/** Deeper than this, an object is written as "[Object]" (a hostile nesting cannot blow the stack). */
const MAX_DEPTH = 10;
/** Keys or items written per object or array; the rest are counted, not written. */
const MAX_ITEMS = 100;

/** `,"key":value` for each own enumerable key of `fields` whose value JSON can hold. */
export function jsonMembers(fields: object): string {
  return members(fields, 0, []);
}

/** A JSON string for any value a message argument may be. */
export function jsonString(v: unknown): string {
  try {
    return JSON.stringify(typeof v === 'string' ? v : String(v));
  } catch {
    return '"[unprintable]"';
  }
}

function members(obj: object, depth: number, seen: object[]): string {
  let keys: string[];
  try {
    keys = Object.keys(obj);
  } catch {
    return ',"[unreadable]":true';
  }
  let out = '';
  const n = Math.min(keys.length, MAX_ITEMS);
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    let text: string | undefined;
    try {
      text = json((obj as Record<string, unknown>)[key], depth, seen);
    } catch {
      text = '"[unreadable]"';
    }
    if (text !== undefined) out += `,${JSON.stringify(key)}:${text}`;
  }
  if (keys.length > n) out += `,"...":"${keys.length - n} more keys not written"`;
  return out;
}

/** JSON text of `v`, or undefined where JSON.stringify would leave the key out. */
function json(v: unknown, depth: number, seen: object[]): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'object':
      if (v === null) return 'null';
      return object(v, depth, seen);
    default:
      return undefined; // undefined, functions, symbols
  }
}

function object(v: object, depth: number, seen: object[]): string {
  if (seen.includes(v)) return '"[Circular]"';
  if (depth >= MAX_DEPTH) return Array.isArray(v) ? '"[Array]"' : '"[Object]"';
  seen.push(v);
  try {
    if (v instanceof Error) return `{${errorMembers(v, depth + 1, seen).slice(1)}}`;
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      const j = toJSON.call(v) as unknown;
      return (j === v ? undefined : json(j, depth + 1, seen)) ?? 'null';
    }
    if (Array.isArray(v)) {
      const n = Math.min(v.length, MAX_ITEMS);
      const items: string[] = [];
      for (let i = 0; i < n; i++) items.push(json(v[i], depth + 1, seen) ?? 'null');
      if (v.length > n) items.push(`"... ${v.length - n} more items not written"`);
      return `[${items.join(',')}]`;
    }
    return `{${members(v, depth + 1, seen).slice(1)}}`;
  } finally {
    seen.pop();
  }
}

/**
 * An error as operators' tools read it: its class, its message and stack with those of its
 * causes appended (`boom: inner`, `caused by: Error: inner`), then its own fields (`code`,
 * `errno`, …). Any error value is written so, under any key, not only `err`.
 */
function errorMembers(err: Error, depth: number, seen: object[]): string {
  let out = `,"type":${jsonString(err.constructor?.name ?? err.name)}`;
  out += `,"message":${jsonString(chain(err, (e) => e.message, ': '))}`;
  out += `,"stack":${jsonString(chain(err, (e) => e.stack ?? '', '\ncaused by: '))}`;
  if (err instanceof AggregateError && Array.isArray(err.errors)) {
    out += `,"aggregateErrors":${json(err.errors, depth, seen) ?? '[]'}`;
  }
  const own: Record<string, unknown> = {};
  for (const key of Object.keys(err)) {
    if (key === 'message' || key === 'stack' || key === 'errors') continue;
    const value = (err as unknown as Record<string, unknown>)[key];
    if (key === 'cause' && value instanceof Error) continue; // in the message and stack already
    own[key] = value;
  }
  return out + members(own, depth, seen);
}

/** The text of an error and of each error in its `cause` chain, joined; a cause loop ends it. */
function chain(err: Error, text: (e: Error) => string, sep: string): string {
  const parts: string[] = [];
  const met = new Set<Error>();
  for (let e: unknown = err; e instanceof Error && !met.has(e) && parts.length < MAX_DEPTH; e = e.cause) {
    met.add(e);
    parts.push(String(text(e)));
  }
  return parts.join(sep);
}

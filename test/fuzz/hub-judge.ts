import Database from 'better-sqlite3';
import { ERROR_CODES } from '../../src/core/errors.js';
import type { Auth, Req, Route } from './hub-routes.js';

/**
 * What every answer of the hub's API must satisfy, checked in O(1) of the hub's state so that a
 * run of a million requests costs the same per request at the end as at the start.
 */

/**
 * Whether the hub wrote anything to its store: SQLite's `PRAGMA data_version`, read on a second
 * connection to the hub's file, changes whenever another connection commits a change (any table,
 * any row) and stays put otherwise. Read before and after a request, it says whether that
 * request wrote, at the cost of one pragma instead of a snapshot of the whole store.
 */
export class StoreWatch {
  private readonly db: Database.Database;
  private readonly stmt: Database.Statement<[], number>;

  constructor(file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.stmt = this.db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  version(): number {
    return this.stmt.get()!;
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The answer the hub's access check must give before anything else: 'pass', the statuses a
 * refusal may have, or undefined where either can happen (a `?key=` that may be the real key).
 */
export function gate(route: Route, auth: Auth): 'pass' | readonly number[] | undefined {
  const { access } = route;
  if (access === 'none') return 'pass';
  if (access === 'bouncer') return auth === 'bouncer' ? 'pass' : [403];
  if (access === 'blocklist') {
    if (auth === 'none') return undefined;
    return auth === 'junk' ? [401] : 'pass';
  }
  if (auth === 'none' || auth === 'junk') return [401];
  if (auth === 'bouncer') return route.bouncer ? 'pass' : [401];
  if (access === 'any') return 'pass';
  if (access === 'node') return auth === 'node' ? 'pass' : [403];
  // admin, metrics: the admin token opens both; a node token is known but not enough.
  return auth === 'admin' ? 'pass' : [403];
}

/** Reads that write by design: a bouncer's stream pull records how far it read. */
const WRITING_READS = new Set(['/v1/decisions/stream']);

/** One answer against the rules; throws with the request and the answer on a violation. */
export function judge(req: Req, status: number, body: string, wrote: boolean): void {
  const what = `${req.method} ${req.url} as ${req.auth} (${req.mode})`;
  const fail = (why: string): never => {
    throw new Error(`${what}: ${why}; answered ${status} ${body.slice(0, 300)}`);
  };
  if (status >= 500) fail('a 5xx');
  // A node whose messages keep being refused is held (ADR 0037): its reports get 429 for a while,
  // whatever they hold, before the body is read.
  const held = status === 429 && req.auth === 'node' && req.route.url === '/v1/reports' && !req.offRoute;
  if (held) {
    if (wrote) fail('a refused request changed the store');
    if ((parse(body) as { code?: unknown } | undefined)?.code !== 'E_RATE') fail('a hold is E_RATE');
    return;
  }
  const g = req.offRoute ? undefined : gate(req.route, req.auth);
  if (Array.isArray(g) && !g.includes(status)) fail(`expected a refusal ${g.join(' or ')}`);
  if (g === 'pass' && req.mode === 'invalid' && status !== 400) fail('a schema violation must be a 400');
  const isRead = req.method === 'GET' || req.method === 'HEAD';
  if (status >= 400 && wrote) fail('a refused request changed the store');
  if (status < 300 && isRead && wrote && !WRITING_READS.has(req.route.url)) fail('a read changed the store');
  if (req.method === 'HEAD') return;
  if (status >= 400) {
    const err = parse(body) as { error?: unknown; code?: unknown; errors?: unknown } | undefined;
    if (req.route.url === '/v1/decisions/bulk' && status === 422 && err && 'errors' in err) {
      bulkAnswer(req, body, true, fail);
      return;
    }
    if (!err || typeof err.error !== 'string' || err.error.length === 0 || err.error.length > 2048) {
      fail('an error body must be {error, code} with a message of 1-2048 characters');
    }
    if (typeof err?.code !== 'string' || !(err.code in ERROR_CODES)) fail('an undocumented error code');
    if (req.mode === 'invalid' && g === 'pass' && err?.code !== 'E_USAGE')
      fail('a schema violation is E_USAGE');
  } else if (req.route.url === '/v1/decisions/bulk' && req.method === 'POST') {
    bulkAnswer(req, body, false, fail);
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The bulk answer accounts for every item once (added, duplicate or error, by index), names each
 * item the schema refuses, and is a 422 exactly when nothing applied.
 */
function bulkAnswer(req: Req, body: string, refused: boolean, fail: (why: string) => never): void {
  const a = parse(body) as
    | {
        added: number;
        duplicates: number;
        errorCount: number;
        errors: Array<{ index: number; code: string; error: string }>;
      }
    | undefined;
  if (!a || !Array.isArray(a.errors)) {
    fail('a bulk answer without errors[]');
    return;
  }
  const sent = (parse(req.body ?? '') as { decisions?: unknown[] } | undefined)?.decisions;
  const n = req.items ?? (Array.isArray(sent) ? sent.length : undefined);
  if (n !== undefined && a.added + a.duplicates + a.errorCount !== n) fail(`${n} items not accounted for`);
  if (refused && (a.added !== 0 || a.duplicates !== 0 || a.errorCount === 0))
    fail('a 422 that applied something');
  if (!refused && a.errorCount > 0 && a.added === 0 && a.duplicates === 0)
    fail('nothing applied but not a 422');
  const indexes = new Set(a.errors.map((e) => e.index));
  for (const e of a.errors) {
    if (!(e.code in ERROR_CODES) || e.error.length === 0 || e.error.length > 2048)
      fail(`item error ${JSON.stringify(e)}`);
  }
  for (const i of req.badItems ?? [])
    if (!indexes.has(i)) fail(`item ${i} breaks the schema but was not refused`);
}

import type { FastifyInstance } from 'fastify';
import { parseDuration } from '../../core/duration.js';
import { RampartError } from '../../core/errors.js';
import { assertSetName } from '../../core/set-name.js';
import type { ApiContext } from '../api.js';
import type { BulkOutcome } from '../core.js';
import { errorSchema } from '../schemas.js';

/** Most bans in one `POST /v1/decisions/bulk`. */
export const MAX_BULK = 100_000;
// 100,000 items of a few hundred bytes each; the API's 1 MiB default is for everything else.
const BULK_BODY_LIMIT = 64 * 1024 * 1024;
/** Errors listed in one answer; `errorCount` has them all (a bad 100,000-line file stays small). */
export const MAX_LISTED_ERRORS = 1_000;

type Item = {
  target: string;
  duration?: number | null;
  reason?: string;
  set?: string;
  force?: boolean;
  replace?: boolean;
};

/**
 * `POST /v1/decisions/bulk`: many operator bans in one request, one transaction and a few
 * envelopes. Items are checked one by one here (not by the schema) so that a bad one is reported
 * by its index while the good ones still apply.
 */
export function bulkRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: { decisions: unknown[]; replace?: boolean } }>(
    '/v1/decisions/bulk',
    {
      bodyLimit: BULK_BODY_LIMIT,
      config: { access: 'admin' },
      schema: {
        body: {
          type: 'object',
          required: ['decisions'],
          additionalProperties: false,
          properties: {
            decisions: { type: 'array', maxItems: MAX_BULK },
            replace: { type: 'boolean' },
          },
        },
        response: {
          '2xx': bulkAnswerSchema,
          422: bulkAnswerSchema,
          '4xx': errorSchema,
        },
      },
    },
    async (req, reply) => {
      const errors: Array<{ index: number; error: string; code: string }> = [];
      const items: Item[] = [];
      const origin: number[] = [];
      const replace = req.body.replace === true;
      req.body.decisions.forEach((raw, index) => {
        try {
          // checkItem's object is this item's own: no copy per item of a 100,000-item request.
          const item = checkItem(raw);
          if (replace) item.replace = true;
          items.push(item);
          origin.push(index);
        } catch (err) {
          const code = err instanceof RampartError ? err.code : 'E_USAGE';
          errors.push({ index, error: (err as Error).message, code });
        }
      });
      const outcomes: BulkOutcome[] = items.length > 0 ? await ctx.core.banMany(items) : [];
      let added = 0;
      let duplicates = 0;
      let firstSeq: number | undefined;
      let lastSeq: number | undefined;
      for (const o of outcomes) {
        if (o.result === 'error') errors.push({ index: origin[o.index]!, error: o.error, code: o.code });
        else if (o.result === 'duplicate') duplicates++;
        else {
          added++;
          firstSeq ??= o.decision.seq;
          lastSeq = o.decision.seq;
        }
      }
      errors.sort((a, b) => a.index - b.index);
      const head = await ctx.core.store.head();
      // Nothing applied and something refused: the request failed as a whole, whatever its size.
      const failed = errors.length > 0 && added === 0 && duplicates === 0;
      return reply.code(failed ? 422 : 200).send({
        head,
        added,
        duplicates,
        errors: errors.slice(0, MAX_LISTED_ERRORS),
        errorCount: errors.length,
        ...(firstSeq === undefined ? {} : { firstSeq, lastSeq }),
      });
    },
  );
}

const bulkAnswerSchema = {
  type: 'object',
  required: ['head', 'added', 'duplicates', 'errors', 'errorCount'],
  properties: {
    head: { type: 'integer' },
    added: { type: 'integer' },
    duplicates: { type: 'integer' },
    errorCount: { type: 'integer' },
    firstSeq: { type: 'integer' },
    lastSeq: { type: 'integer' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { index: { type: 'integer' }, error: { type: 'string' }, code: { type: 'string' } },
      },
    },
  },
} as const;

const ITEM_FIELDS = new Set(['target', 'duration', 'reason', 'set', 'force']);

/** The single-ban schema, by hand: the same limits, but an error names the item's field only. */
function checkItem(raw: unknown): Item {
  const bad = (msg: string) => new RampartError('E_USAGE', msg);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('item must be an object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!ITEM_FIELDS.has(k)) throw bad(`unknown field ${k.slice(0, 32)}`);
  }
  if (typeof o.target !== 'string' || o.target.length === 0 || o.target.length > 64)
    throw bad('target must be a string of 1 to 64 characters');
  const item: Item = { target: o.target };
  if (o.duration !== undefined) {
    if (
      !(typeof o.duration === 'number' && Number.isInteger(o.duration)) &&
      !(typeof o.duration === 'string' && o.duration.length <= 32)
    )
      throw bad('duration must be an integer or a string of at most 32 characters');
    item.duration = parseDuration(o.duration, 'duration');
  }
  if (o.reason !== undefined) {
    if (typeof o.reason !== 'string' || o.reason.length > 256)
      throw bad('reason must be a string of at most 256 characters');
    item.reason = o.reason;
  }
  if (o.set !== undefined) {
    item.set = assertSetName(o.set);
  }
  if (o.force !== undefined) {
    if (typeof o.force !== 'boolean') throw bad('force must be true or false');
    item.force = o.force;
  }
  return item;
}

import type { FastifyInstance } from 'fastify';
import { parseTarget } from '../../core/address.js';
import { parseSince } from '../../core/since.js';
import { MAX_ACTIVE_PAGE } from '../../store/sqlite-active.js';
import type { ApiContext } from '../api.js';
import { decisionSchema, errorSchema, setName, targetString } from '../schemas.js';

interface BansQuery {
  limit?: number;
  cursor?: string;
  target?: string;
  origin?: string;
  rule?: string;
  set?: string;
  since?: string;
}

/**
 * `GET /v1/bans`: the bans in force, newest first, one page at a time, filtered in the store
 * through indexes (see Store.activePage), so it stays fast with a million bans.
 */
export function banRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: BansQuery }>(
    '/v1/bans',
    {
      config: { access: 'any', viewer: true },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: MAX_ACTIVE_PAGE },
            cursor: { type: 'string', maxLength: 40 },
            target: targetString,
            origin: { type: 'string', minLength: 1, maxLength: 128 },
            rule: { type: 'string', minLength: 1, maxLength: 128 },
            set: setName,
            since: { type: 'string', minLength: 1, maxLength: 40 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'next', 'total'],
            properties: {
              items: { type: 'array', items: decisionSchema },
              next: { type: ['string', 'null'] },
              total: { type: 'integer' },
            },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const now = ctx.core.now();
      return ctx.core.store.activePage(
        {
          limit: q.limit ?? 100,
          ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
          ...(q.target !== undefined ? { target: parseTarget(q.target) } : {}),
          ...(q.origin !== undefined ? { origin: q.origin } : {}),
          ...(q.rule !== undefined ? { rule: q.rule } : {}),
          ...(q.set !== undefined ? { set: q.set } : {}),
          ...(q.since !== undefined ? { since: parseSince(q.since, now) } : {}),
        },
        now,
      );
    },
  );
}

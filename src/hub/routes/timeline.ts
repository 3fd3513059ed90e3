import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';

const MINUTE = 60_000;
/** A day of minutes: the query reads the log's time index over the window, so the window is capped. */
export const MAX_TIMELINE_MINUTES = 1440;

/**
 * `GET /v1/timeline?minutes=N`: bans decided per minute over the last N minutes (default 180),
 * oldest first, the last bucket being the current minute. For the dashboard's chart.
 */
export function timelineRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { minutes?: number } }>(
    '/v1/timeline',
    {
      config: { access: 'admin', viewer: true },
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { minutes: { type: 'integer', minimum: 1, maximum: MAX_TIMELINE_MINUTES } },
        },
        response: {
          200: {
            type: 'object',
            required: ['from', 'bucketMs', 'counts'],
            properties: {
              from: { type: 'integer' },
              bucketMs: { type: 'integer' },
              counts: { type: 'array', items: { type: 'integer' } },
            },
          },
        },
      },
    },
    async (req) => {
      const minutes = req.query.minutes ?? 180;
      // Aligned to whole minutes so every poll in a minute asks the same question.
      const from = (Math.floor(ctx.core.now() / MINUTE) - minutes + 1) * MINUTE;
      return { from, bucketMs: MINUTE, counts: await ctx.core.store.banCounts(from, MINUTE, minutes) };
    },
  );
}

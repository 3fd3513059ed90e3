import type { FastifyInstance } from 'fastify';
import { parseTarget } from '../../core/address.js';
import { parseDuration } from '../../core/duration.js';
import { packDecisions } from '../../core/packed-decisions.js';
import type { ApiContext } from '../api.js';
import { decisionPageSchema, decisionSchema, errorSchema, setName, targetString } from '../schemas.js';
import { bouncerLookup } from './crowdsec.js';

const MAX_PAGE = 10_000;

/** A decision and what the request did, one of `results`. */
const answerSchema = <R extends string>(results: readonly R[]) =>
  ({
    ...decisionSchema,
    required: [...decisionSchema.required, 'result'],
    properties: { ...decisionSchema.properties, result: { type: 'string', enum: results } },
  }) as const;

/** A ban's answer: `ban` (appended) or `kept` (a longer ban stays in force). */
const banAnswerSchema = answerSchema(['ban', 'kept']);
/** An unban's answer: the unban decision, or (`kept`) the ban in force that `ifReason` spared. */
const unbanAnswerSchema = answerSchema(['unban', 'kept']);

export function decisionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // Agents (bearer token) page the log; CrowdSec bouncers (X-Api-Key) look up ?ip= or ?range=.
  app.get<{
    Querystring: { since?: number; limit?: number; ip?: string; range?: string; format?: 'packed' };
  }>(
    '/v1/decisions',
    {
      config: { access: 'any', bouncer: true },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'integer', minimum: 0 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE },
            ip: targetString,
            range: targetString,
            // The page as one packed run (core/packed-decisions.ts): agents catching up read a
            // tenth of the bytes, and the hub serialises columns instead of 10,000 objects.
            format: { type: 'string', enum: ['packed'] },
          },
        },
      },
    },
    async (req, reply) => {
      if (req.bouncer) return bouncerLookup(ctx, req, reply);
      const page = await ctx.core.decisionsSince(req.query.since ?? 0, req.query.limit ?? 1000);
      if (req.query.format !== 'packed' || page.snapshot) return page;
      // An empty page, or (never, the log has no gaps) one whose seqs skip, stays a plain page.
      const packed = packDecisions(page.decisions);
      return packed ? { head: page.head, packed } : page;
    },
  );

  app.get(
    '/v1/decisions/active',
    { config: { access: 'any' }, schema: { response: { 200: decisionPageSchema } } },
    async () => ctx.core.active(),
  );

  app.post<{
    Body: {
      target: string;
      duration?: string | number;
      reason?: string;
      set?: string;
      force?: boolean;
      replace?: boolean;
    };
  }>(
    '/v1/decisions',
    {
      config: { access: 'admin' },
      schema: {
        body: {
          type: 'object',
          required: ['target'],
          additionalProperties: false,
          properties: {
            target: targetString,
            duration: { anyOf: [{ type: 'string', maxLength: 32 }, { type: 'integer' }] },
            reason: { type: 'string', maxLength: 256 },
            set: setName,
            force: { type: 'boolean' },
            replace: { type: 'boolean' },
          },
        },
        response: { 201: banAnswerSchema, 200: banAnswerSchema, '4xx': errorSchema },
      },
    },
    async (req, reply) => {
      const { target, reason, set, force, replace } = req.body;
      const duration =
        req.body.duration === undefined ? undefined : parseDuration(req.body.duration, 'duration');
      const out = await ctx.core.banOutcome({ target, reason, set, duration, force, replace });
      // 201: a new decision; 200: a longer ban in force was kept (pass replace to shorten it).
      return reply.code(out.result === 'ban' ? 201 : 200).send({ ...out.decision, result: out.result });
    },
  );

  app.delete<{ Params: { target: string }; Querystring: { set?: string; ifReason?: string } }>(
    '/v1/decisions/:target',
    {
      config: { access: 'admin' },
      schema: {
        params: { type: 'object', properties: { target: targetString } },
        querystring: {
          type: 'object',
          properties: { set: setName, ifReason: { type: 'string', maxLength: 256 } },
        },
        response: { 200: unbanAnswerSchema, '4xx': errorSchema },
      },
    },
    async (req, reply) => {
      const { set, ifReason } = req.query;
      const out = await ctx.core.unbanOutcome(req.params.target, { set, ifReason });
      if (out.result !== 'absent') return { ...out.decision, result: out.result };
      // An address inside a banned range is dropped by the range: say which one to lift.
      const t = parseTarget(req.params.target);
      const { items } = await ctx.core.store.activePage({ limit: 5, target: t }, ctx.core.now());
      const covering = items.filter((b) => b.target !== t.text && parseTarget(b.target).prefix < t.prefix);
      const error = covering.length
        ? `${t.text} is not banned itself, but ${covering.map((b) => b.target).join(', ')} covers it; unban that range to lift it`
        : `${t.text} is not banned`;
      return reply.code(404).send({ error, code: 'E_HTTP' });
    },
  );
}

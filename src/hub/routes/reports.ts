import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';
import { NODE_KINDS } from '../core.js';
import { decisionSchema, errorSchema } from '../schemas.js';

/**
 * `POST /v1/reports`: a node's sealed envelope over HTTP (agents send reports here first, the bus
 * when the API is unreachable). The same checks as on the bus apply, and the envelope's sender
 * must be the node owning the bearer token. As on the bus, a node the hub keeps refusing is held
 * (429 before its body is even parsed); reports past the node's budget count towards that, as
 * on the bus (ADR 0037). Unlike the bus, each report is verified and judged in full even past the
 * budget, because the answer tells the agent whether to keep its local ban (an allowlisted
 * address must be lifted whatever the budget).
 */
export function reportRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(
    '/v1/reports',
    {
      config: { access: 'node' },
      preParsing: async (req, reply) => {
        const caller = req.caller;
        if (caller?.role !== 'node') return;
        const ms = ctx.heldFor?.(caller.name) ?? 0;
        if (ms > 0)
          return reply
            .code(429)
            .header('retry-after', String(Math.ceil(ms / 1000)))
            .send({
              error: `node ${caller.name} is held: too many of its messages were refused`,
              code: 'E_RATE',
            });
      },
      schema: {
        body: { type: 'object' },
        response: {
          200: {
            type: 'object',
            properties: {
              result: { type: 'string' },
              reason: { type: 'string' },
              refusal: { type: 'string' },
              decision: decisionSchema,
            },
          },
          '4xx': errorSchema,
        },
      },
    },
    async (req, reply) => {
      const caller = req.caller;
      if (caller?.role !== 'node')
        return reply.code(403).send({ error: 'needs a node token', code: 'E_AUTH' });
      // The signature covers the envelope's fields, not its JSON layout, so re-serialising is safe.
      const text = JSON.stringify(req.body);
      await ctx.core.ensureSender(text);
      const r = ctx.core.openFromNode(text, NODE_KINDS);
      if (!r.ok) {
        ctx.core.refusedFrom(caller.name, r.reason);
        return reply.code(400).send({ error: `envelope refused: ${r.reason}`, code: 'E_AUTH' });
      }
      if (r.env.from !== caller.name) {
        ctx.core.dropFromBus(caller.name, 'topic-mismatch');
        return reply
          .code(403)
          .send({ error: `envelope is from ${r.env.from}, token is ${caller.name}`, code: 'E_AUTH' });
      }
      if (r.env.kind === 'heartbeat') {
        await ctx.core.heartbeat(caller.name, r.env.body);
        return { result: 'ok' };
      }
      if (r.env.kind === 'hits') {
        const h = await ctx.core.hits(caller.name, r.env.body);
        // Refused whole: retrying the same body cannot help, and the agent does not retry.
        if (h.error !== undefined) return reply.code(400).send({ error: h.error, code: 'E_USAGE' });
        return { result: h.counted > 0 ? 'counted' : 'ignored' };
      }
      // { result, reason?, refusal?, decision? }: the agent lifts its local ban on a refusal other
      // than rate-limited (it is still under attack then).
      const outcome = await ctx.core.report(caller.name, r.env.body);
      if (outcome.refusal === 'rate-limited') ctx.core.refusedFrom(caller.name, 'over-budget', false);
      return outcome;
    },
  );
}

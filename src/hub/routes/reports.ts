import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';
import { NODE_KINDS } from '../core.js';
import { decisionSchema, errorSchema } from '../schemas.js';

/**
 * `POST /v1/reports`: a node's sealed envelope over HTTP, for when the bus is down. The same
 * checks as on the bus apply, and the envelope's sender must be the node owning the bearer token.
 */
export function reportRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(
    '/v1/reports',
    {
      config: { access: 'node' },
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
      if (!r.ok) return reply.code(400).send({ error: `envelope refused: ${r.reason}`, code: 'E_AUTH' });
      if (r.env.from !== caller.name) {
        ctx.core.drop('topic-mismatch');
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
      return ctx.core.report(caller.name, r.env.body);
    },
  );
}

import type { FastifyInstance } from 'fastify';
import { parseTarget } from '../../core/address.js';
import { RampartError } from '../../core/errors.js';
import type { ApiContext } from '../api.js';
import { allowEntrySchema, decisionSchema, targetString } from '../schemas.js';

export function allowlistRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/v1/allowlist',
    {
      config: { access: 'admin', viewer: true },
      schema: {
        response: {
          200: { type: 'object', properties: { entries: { type: 'array', items: allowEntrySchema } } },
        },
      },
    },
    async () => ({ entries: await ctx.core.store.allowList() }),
  );

  app.post<{ Body: { cidr: string; comment?: string; force?: boolean } }>(
    '/v1/allowlist',
    {
      config: { access: 'admin' },
      schema: {
        body: {
          type: 'object',
          required: ['cidr'],
          additionalProperties: false,
          properties: {
            cidr: targetString,
            comment: { type: 'string', maxLength: 256 },
            force: { type: 'boolean' },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: { cidr: { type: 'string' }, unbanned: { type: 'array', items: decisionSchema } },
          },
        },
      },
    },
    async (req, reply) => {
      // The whole internet allowlisted lifts every ban in the fleet: only on purpose.
      if (parseTarget(req.body.cidr).prefix === 0 && req.body.force !== true) {
        throw new RampartError(
          'E_USAGE',
          `allowlisting ${req.body.cidr} lifts every ban in the fleet; pass --force (API: "force": true) if you mean it`,
        );
      }
      return reply.code(201).send(await ctx.core.allowAdd(req.body.cidr, req.body.comment ?? ''));
    },
  );

  // The CIDR may come as a JSON body (the documented form) or as ?cidr= (for clients that
  // cannot send a body with DELETE).
  app.delete<{ Body: { cidr?: string } | undefined; Querystring: { cidr?: string } }>(
    '/v1/allowlist',
    {
      config: { access: 'admin' },
      schema: {
        body: { type: ['object', 'null'], properties: { cidr: targetString } },
        querystring: { type: 'object', properties: { cidr: targetString } },
      },
    },
    async (req, reply) => {
      const cidr = req.body?.cidr ?? req.query.cidr;
      if (!cidr) return reply.code(400).send({ error: 'body/cidr is required', code: 'E_USAGE' });
      const removed = await ctx.core.allowRemove(cidr);
      if (!removed) return reply.code(404).send({ error: `${cidr} is not on the allowlist`, code: 'E_HTTP' });
      return { removed: true };
    },
  );
}

import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';
import { newBouncerKey, tokenHash } from '../auth.js';
import { nodeName } from '../schemas.js';

/** Admin routes behind `rampart bouncers add|list|remove`; a key is shown once, at creation. */
export function bouncerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: { name: string } }>(
    '/v1/bouncers',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: { name: nodeName },
        },
      },
    },
    async (req, reply) => {
      const key = newBouncerKey();
      const b = await ctx.core.store.addBouncer(req.body.name, tokenHash(key), ctx.core.now());
      return reply.code(201).send({ name: b.name, key, createdAt: b.createdAt });
    },
  );

  app.get('/v1/bouncers', async () => ({
    bouncers: (await ctx.core.store.listBouncers()).map((b) => ({
      name: b.name,
      createdAt: b.createdAt,
      lastPull: b.lastPull,
      lastSeq: b.lastSeq,
    })),
  }));

  app.delete<{ Params: { name: string } }>(
    '/v1/bouncers/:name',
    { schema: { params: { type: 'object', properties: { name: nodeName } } } },
    async (req, reply) => {
      if (!(await ctx.core.store.removeBouncer(req.params.name))) {
        return reply.code(404).send({ error: `no bouncer named ${req.params.name}`, code: 'E_HTTP' });
      }
      return { removed: true };
    },
  );
}

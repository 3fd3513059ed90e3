import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';

export function statusRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/health', { config: { access: 'none' } }, async () => ({
    ok: true,
    head: await ctx.core.store.head(),
  }));

  app.get('/metrics', { config: { access: 'metrics' } }, async (_req, reply) => {
    const text = await ctx.core.metrics.registry.metrics();
    reply.type(ctx.core.metrics.registry.contentType).send(text);
  });

  app.get('/v1/status', { config: { access: 'admin', viewer: true } }, async () => {
    const store = ctx.core.store;
    const head = await store.head();
    const nodes = (await store.listNodes())
      .filter((n) => n.removedAt === null && n.publicKey !== null)
      .map((n) => ({
        name: n.name,
        lastSeq: n.lastSeq,
        lag: Math.max(0, head - n.lastSeq),
        lastSeen: n.lastSeen,
        version: n.version,
        ...skewOf(ctx, n.name),
      }));
    const counts = await store.countActive(ctx.core.now());
    const dropped = await ctx.core.metrics.byLabel('rampart_hub_dropped_messages_total', 'reason');
    const reports = await ctx.core.metrics.byLabel('rampart_hub_reports_total', 'result');
    return {
      fleet: ctx.core.fleet,
      head,
      nodes,
      bus: ctx.bus(),
      decisions: {
        active: counts.total,
        byFamily: counts.byFamily,
        byOrigin: counts.byOrigin,
        byRule: counts.byRule,
      },
      reports,
      dropped,
    };
  });
}

/** Clock skew measured from the node's last verified message; `refused` when outside the window. */
function skewOf(ctx: ApiContext, node: string): { clockSkewMs?: number; clockRefused?: boolean } {
  const s = ctx.core.clockSkew(node);
  return s ? { clockSkewMs: s.ms, clockRefused: s.refused } : {};
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  type CrowdsecDecision,
  matches,
  parseFilter,
  type StreamFilter,
  toCrowdsec,
} from '../../compat/crowdsec/decision-shape.js';
import { contains, parseTarget } from '../../core/address.js';
import type { Decision } from '../../core/decision.js';
import type { BouncerRecord } from '../../store/types.js';
import type { ApiContext } from '../api.js';

const PAGE = 10_000;

const streamQuery = {
  type: 'object',
  properties: {
    startup: { type: 'boolean' },
    scopes: { type: 'string', maxLength: 256 },
    origins: { type: 'string', maxLength: 1024 },
    scenarios_containing: { type: 'string', maxLength: 1024 },
    scenarios_not_containing: { type: 'string', maxLength: 1024 },
  },
} as const;

type StreamQuery = { startup?: boolean } & Record<string, string | undefined>;

/**
 * The CrowdSec LAPI routes a bouncer calls (`X-Api-Key`), so existing CrowdSec bouncers enforce
 * a rampart fleet's bans. The stream's cursor is the decision log's seq, kept per bouncer in the
 * store, so a bouncer restarted with `startup=false` still gets exactly what it missed.
 */
export function crowdsecRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: StreamQuery }>(
    '/v1/decisions/stream',
    { config: { access: 'bouncer' }, schema: { querystring: streamQuery } },
    async (req) => stream(ctx, req.bouncer!, req.query.startup === true, parseFilter(req.query)),
  );
}

async function stream(
  ctx: ApiContext,
  bouncer: BouncerRecord,
  startup: boolean,
  filter: StreamFilter,
): Promise<{ new: CrowdsecDecision[] | null; deleted: CrowdsecDecision[] | null }> {
  const store = ctx.core.store;
  const now = ctx.core.now();
  const head = await store.head();
  const fresh: CrowdsecDecision[] = [];
  const deleted: CrowdsecDecision[] = [];
  // A cursor older than retention has missed log entries: it gets the full set, like a startup.
  if (startup || bouncer.lastSeq + 1 < (await store.oldestRetained())) {
    for (const d of await store.active(now)) push(fresh, d, now, filter);
  } else {
    // Only the last word per target counts: a ban then an unban in one interval is a delete.
    const last = new Map<string, Decision>();
    for (let seq = bouncer.lastSeq; seq < head; ) {
      const page = await store.since(seq, PAGE);
      if (page.length === 0) break;
      for (const d of page) last.set(`${d.target}|${d.set}`, d);
      seq = page[page.length - 1]!.seq;
    }
    for (const d of last.values()) {
      if (d.action === 'unban') push(deleted, d, now, filter);
      else if (d.expiresAt === null || d.expiresAt > now) push(fresh, d, now, filter);
    }
  }
  await store.touchBouncer(bouncer.name, head, now);
  // CrowdSec answers null, not [], for an empty side; bouncers expect that shape.
  return { new: fresh.length ? fresh : null, deleted: deleted.length ? deleted : null };
}

function push(out: CrowdsecDecision[], d: Decision, now: number, filter: StreamFilter): void {
  const c = toCrowdsec(d, now);
  if (matches(c, filter)) out.push(c);
}

/**
 * `GET /v1/decisions?ip=|range=` for a bouncer (the live-mode lookup): the bans in force whose
 * range contains the address or range asked about. Returns null when none, as CrowdSec does.
 */
export async function bouncerLookup(
  ctx: ApiContext,
  req: FastifyRequest<{ Querystring: { ip?: string; range?: string } }>,
  reply: FastifyReply,
): Promise<CrowdsecDecision[] | null> {
  const asked = req.query.ip ?? req.query.range;
  if (asked === undefined) {
    // A bare call is how bouncers and `curl -I` check their key.
    return reply.code(200).send(null);
  }
  const t = parseTarget(asked);
  const now = ctx.core.now();
  const page = await ctx.core.store.activePage({ limit: 1000, target: t }, now);
  const hits = page.items.filter((d) => contains(parseTarget(d.target), t)).map((d) => toCrowdsec(d, now));
  return hits.length ? hits : null;
}

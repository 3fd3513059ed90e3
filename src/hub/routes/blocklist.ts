import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RampartError } from '../../core/errors.js';
import type { ApiContext } from '../api.js';
import { type BlocklistQuery, blocklistBody, blocklistVersion, etagMatches } from '../blocklist/body.js';
import { BLOCKLIST_FORMATS, type BlocklistFormat, blocklistWriter } from '../blocklist/formats.js';
import { setName } from '../schemas.js';

/** `/v1/blocklist.EXT` picks the format as `?format=` does (`.rsc` is RouterOS's script suffix). */
const EXTENSIONS: Record<string, BlocklistFormat> = { txt: 'txt', json: 'json', csv: 'csv', rsc: 'mikrotik' };

type Query = {
  format?: string;
  family?: number;
  set?: string;
  aggregate?: string;
  list?: string;
  key?: string;
};

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    format: { type: 'string', enum: [...BLOCKLIST_FORMATS, 'rsc'] },
    family: { type: 'integer', enum: [4, 6] },
    set: setName,
    aggregate: { type: 'string', enum: ['0', '1', 'true', 'false'] },
    // Printable ASCII only; it is quoted and escaped in the script as well.
    list: { type: 'string', pattern: '^[\\x20-\\x7e]{1,64}$' },
    key: { type: 'string', maxLength: 512 },
  },
} as const;

/**
 * The list edge routers pull (plain text, JSON, CSV or a RouterOS script), filtered by family and
 * set, optionally merged into the fewest CIDRs. An `If-None-Match` with the current ETag is a
 * 304 computed from two small reads, so a router may poll every few seconds.
 */
export function blocklistRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const path of ['/v1/blocklist', ...Object.keys(EXTENSIONS).map((ext) => `/v1/blocklist.${ext}`)]) {
    const fromPath = EXTENSIONS[path.split('.').at(-1)!];
    app.get<{ Querystring: Query }>(
      path,
      { config: { access: 'blocklist' }, schema: { querystring } },
      async (req, reply) => serve(ctx, req, reply, fromPath),
    );
  }
}

async function serve(
  ctx: ApiContext,
  req: FastifyRequest<{ Querystring: Query }>,
  reply: FastifyReply,
  fromPath: BlocklistFormat | undefined,
) {
  const asked = req.query.format === 'rsc' ? 'mikrotik' : (req.query.format as BlocklistFormat | undefined);
  if (fromPath && asked && asked !== fromPath) {
    throw new RampartError('E_USAGE', `format=${asked} contradicts the path's .${path(fromPath)} suffix`);
  }
  const family = req.query.family as 4 | 6 | undefined;
  const q: BlocklistQuery = {
    format: fromPath ?? asked ?? 'txt',
    ...(family ? { family } : {}),
    ...(req.query.set !== undefined ? { set: req.query.set } : {}),
    aggregate: req.query.aggregate === '1' || req.query.aggregate === 'true',
    list: req.query.list ?? 'rampart',
  };
  const store = ctx.core.store;
  const now = ctx.core.now();
  const { etag, head } = await blocklistVersion(store, q, now);
  reply.header('etag', etag).header('cache-control', 'no-cache');
  if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).send();
  const writer = blocklistWriter(q.format, {
    head,
    now,
    list: q.list,
    ...(q.family ? { family: q.family } : {}),
  });
  reply.type(writer.contentType);
  return reply.send(Readable.from(blocklistBody(store, q, writer, now)));
}

function path(format: BlocklistFormat): string {
  return Object.entries(EXTENSIONS).find(([, f]) => f === format)![0];
}

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Where the page's files are: next to this module, in `src/` when run from source and in
 * `dist/` after `npm run build`, which copies the folder (tsc only emits .js).
 */
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * Scripts and styles from this origin only, no inline code, no framing: an address or reason
 * an attacker got into a ban can at worst show as text, never run.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return assets;
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    assets.set(name, {
      body,
      type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  }
  return assets;
}

/** Serves the dashboard: the page at `/`, its files under `/dashboard/`. No token needed: the data is. */
export function dashboardAssets(app: FastifyInstance, dir = STATIC_DIR): void {
  // Read once: a handful of small files, and no path from a request ever reaches the disk.
  const assets = load(dir);
  const serve = (name: string, req: FastifyRequest, reply: FastifyReply) => {
    const a = assets.get(name);
    if (!a) {
      const why = assets.size === 0 ? ` (no dashboard files in ${dir}: run npm run build)` : '';
      return reply.code(404).send({ error: `no such dashboard file: ${name}${why}`, code: 'E_HTTP' });
    }
    reply
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .header('etag', a.etag);
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.type).send(a.body);
  };
  app.get('/', { config: { access: 'none' } }, (req, reply) => serve('index.html', req, reply));
  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    {
      config: { access: 'none' },
      schema: { params: { type: 'object', properties: { file: { type: 'string', maxLength: 64 } } } },
    },
    (req, reply) => serve(req.params.file, req, reply),
  );
}

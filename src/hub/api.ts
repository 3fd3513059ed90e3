import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { BouncerRecord } from '../store/types.js';
import type { Authenticator, Caller } from './auth.js';
import type { HubCore } from './core.js';
import { dashboardAssets } from './dashboard/assets.js';
import { eventRoutes } from './dashboard/events.js';
import { sessionRoutes } from './dashboard/session-routes.js';
import {
  CSRF_HEADER,
  cookieValue,
  csrfMatches,
  SESSION_COOKIE,
  type SessionStore,
} from './dashboard/sessions.js';
import { parseJsonBody } from './json-body.js';
import { allowlistRoutes } from './routes/allowlist.js';
import { banRoutes } from './routes/bans.js';
import { blocklistRoutes } from './routes/blocklist.js';
import { bouncerRoutes } from './routes/bouncers.js';
import { bulkRoutes } from './routes/bulk.js';
import { crowdsecRoutes } from './routes/crowdsec.js';
import { decisionRoutes } from './routes/decisions.js';
import { nodeRoutes } from './routes/nodes.js';
import { reportRoutes } from './routes/reports.js';
import { statusRoutes } from './routes/status.js';
import { timelineRoutes } from './routes/timeline.js';

/**
 * Who may call a route: nobody needs a token (`none`), any enrolled node or admin (`any`), `node`
 * only, `admin` only, the read-only metrics token or the admin (`metrics`), a CrowdSec
 * bouncer's `X-Api-Key` only (`bouncer`), or the edge-router list (`blocklist`: a node or admin
 * bearer, or a bouncer key as `X-Api-Key` or `?key=`; anyone when `hub.blocklist.public`).
 */
export type Access = 'none' | 'any' | 'node' | 'admin' | 'metrics' | 'bouncer' | 'blocklist';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** The route also answers CrowdSec bouncers (an `X-Api-Key` header and no bearer). */
    bouncer?: boolean;
    /** The read-only viewer token (or a viewer's dashboard session) may GET this route too. */
    viewer?: boolean;
  }
  interface FastifyRequest {
    caller?: Caller;
    bouncer?: BouncerRecord;
    /** The dashboard session cookie's value, when the caller came with one instead of a bearer. */
    sessionId?: string;
  }
}

/** What the routes need besides the core. */
export interface ApiContext {
  core: HubCore;
  auth: Authenticator;
  /** Base URL put in join tokens (reachable by other servers). */
  publicUrl: () => string;
  hubPublicKeyText: string;
  hubPublicKey: import('node:crypto').KeyObject;
  bus: () => { type: string; url: string; connected?: boolean };
  /** Join tokens expire after this long (ms). */
  joinTtlMs: number;
  /** The dashboard's login sessions. */
  sessions: SessionStore;
  log: Logger;
  /** `hub.blocklist.public`: `/v1/blocklist` answers without any key. */
  blocklistPublic?: boolean;
  /** How long a node the hub keeps refusing is held (ms, 0 when not): its HTTP reports get 429. */
  heldFor?: (node: string) => number;
}

export interface ApiOptions {
  tls?: { cert: string; key: string };
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
}

const STATUS_BY_CODE: Record<string, number> = {
  E_USAGE: 400,
  E_ADDRESS: 400,
  E_DURATION: 400,
  E_CONFIG: 400,
  E_SET_NAME: 400,
  E_UNBANNABLE: 422,
  E_RATE: 429,
  E_PROTECTED: 422,
  E_AUTH: 403,
};

/** Builds the fastify app (not listening yet). */
export function buildApi(ctx: ApiContext, opts: ApiOptions = {}): FastifyInstance {
  let https: { cert: Buffer; key: Buffer } | undefined;
  if (opts.tls) {
    try {
      https = { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) };
    } catch (err) {
      throw new RampartError('E_CONFIG', `cannot read TLS certificate or key: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const app = Fastify({
    logger: false,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    // Validation errors name the field (`body/target must be string`).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    // A URL refused before routing (bad percent-encoding, an over-long path segment) gets the
    // coded error shape every other refusal has, not fastify's own, which echoes the whole path.
    frameworkErrors: (err, _req, reply) => {
      const long = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const error = long ? 'a URL path segment is too long' : 'the URL path is not valid percent-encoding';
      (reply as FastifyReply).code(long ? 414 : 400).send({ error, code: 'E_HTTP' });
    },
    ...(https ? { https } : {}),
  }) as unknown as FastifyInstance;

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  app.decorateRequest('caller', undefined);
  app.decorateRequest('bouncer', undefined);
  app.decorateRequest('sessionId', undefined);
  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    const routeAccess = config?.access ?? 'admin';
    if (routeAccess === 'none' || (routeAccess === 'blocklist' && ctx.blocklistPublic)) return;
    // Routers often cannot set a header: the list takes a bouncer key in the URL too.
    const queryKey = routeAccess === 'blocklist' ? (req.query as { key?: unknown }).key : undefined;
    const apiKey = req.headers['x-api-key'] ?? queryKey;
    const takesKey = config?.bouncer || routeAccess === 'blocklist';
    const access = routeAccess === 'blocklist' ? 'any' : routeAccess;
    // A bouncer is told apart from an agent by its header: agents always send a bearer token.
    if (access === 'bouncer' || (takesKey && apiKey !== undefined && !req.headers.authorization)) {
      const bouncer = typeof apiKey === 'string' ? await ctx.auth.bouncer(apiKey) : undefined;
      // 403 for a missing or wrong key, as CrowdSec's LAPI answers.
      if (!bouncer) {
        const what = queryKey !== undefined && req.headers['x-api-key'] === undefined ? '?key=' : 'X-Api-Key';
        return reply.code(403).send({ error: `missing or invalid ${what}`, code: 'E_AUTH' });
      }
      req.bouncer = bouncer;
      return;
    }
    const caller = await callerOf(ctx, req);
    if (caller === 'csrf') {
      return reply.code(403).send({
        error: `a dashboard session must send its ${CSRF_HEADER} header with every change`,
        code: 'E_AUTH',
      });
    }
    if (!caller) {
      const error =
        routeAccess === 'blocklist'
          ? 'missing credentials: pass a bouncer key as ?key= or X-Api-Key, or a node or admin bearer token'
          : 'missing or invalid bearer token';
      return reply.code(401).send({ error, code: 'E_AUTH' });
    }
    if (!permits(access, config?.viewer === true, req.method, caller)) {
      const needs =
        caller.role === 'viewer'
          ? 'an admin token (the viewer token only reads)'
          : `${{ admin: 'an admin', node: 'a node', metrics: 'the metrics or admin', any: 'a node or admin' }[access]} token`;
      return reply.code(403).send({ error: `this endpoint needs ${needs}`, code: 'E_AUTH' });
    }
    req.caller = caller;
    // Where each node calls from: bans covering it need the operator's force (hub/protected.ts).
    if (caller.role === 'node') ctx.core.protectedAddrs.noteNode(caller.name, req.ip);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const where = `${err.validationContext ?? 'request'}${first?.instancePath ?? ''}`;
      const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const field = missing ? `${err.validationContext}/${missing}` : where;
      return reply.code(400).send({ error: `${field}: ${first?.message ?? 'invalid'}`, code: 'E_USAGE' });
    }
    if (err instanceof RampartError) {
      return reply.code(STATUS_BY_CODE[err.code] ?? 500).send({ error: err.message, code: err.code });
    }
    if (err.statusCode && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: err.message, code: 'E_HTTP' });
    }
    ctx.log.error({ err, url: req.url }, 'API request failed');
    return reply.code(500).send({ error: 'internal error (see the hub log)', code: 'E_HTTP' });
  });
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .send({ error: `no such endpoint: ${req.method} ${req.url.split('?')[0]}`, code: 'E_HTTP' });
  });

  app.register(async (scope) => {
    statusRoutes(scope, ctx);
    decisionRoutes(scope, ctx);
    blocklistRoutes(scope, ctx);
    banRoutes(scope, ctx);
    bulkRoutes(scope, ctx);
    nodeRoutes(scope, ctx);
    allowlistRoutes(scope, ctx);
    reportRoutes(scope, ctx);
    crowdsecRoutes(scope, ctx);
    bouncerRoutes(scope, ctx);
    timelineRoutes(scope, ctx);
    sessionRoutes(scope, ctx);
    eventRoutes(scope, ctx);
    dashboardAssets(scope);
  });
  return app;
}

const READS = new Set(['GET', 'HEAD']);

/**
 * The caller of a request: its bearer token, else its dashboard session cookie. A session's
 * state-changing request without the session's CSRF token is refused ('csrf'): SameSite=Strict
 * already keeps other sites' requests cookie-less, the token also covers sibling subdomains.
 */
async function callerOf(ctx: ApiContext, req: FastifyRequest): Promise<Caller | 'csrf' | undefined> {
  if (req.headers.authorization !== undefined) return ctx.auth.resolve(req.headers.authorization);
  const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
  const session = ctx.sessions.get(id);
  if (!session) return undefined;
  if (!READS.has(req.method) && !csrfMatches(session, req.headers[CSRF_HEADER])) return 'csrf';
  req.sessionId = id;
  return { role: session.role };
}

/** Whether `caller` may use a route of `access`; the viewer reads (GET) routes marked for it. */
function permits(access: Access, viewer: boolean, method: string, caller: Caller): boolean {
  if (access === 'metrics') return caller.role === 'metrics' || caller.role === 'admin';
  if (caller.role === 'viewer') return viewer && READS.has(method);
  return caller.role !== 'metrics' && (access === 'any' || caller.role === access);
}

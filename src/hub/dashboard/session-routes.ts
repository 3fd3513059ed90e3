import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiContext } from '../api.js';
import { CSRF_HEADER, cookieValue, csrfMatches, SESSION_COOKIE, sessionCookie } from './sessions.js';

const refused = (reply: FastifyReply, status: number, error: string) =>
  reply.code(status).send({ error, code: 'E_AUTH' });

const secure = (req: FastifyRequest) => req.protocol === 'https';

/**
 * The dashboard's login: `POST /v1/session` trades the admin or viewer token for an HttpOnly,
 * SameSite=Strict cookie and hands the page its CSRF token; `GET` tells a reloaded page who it
 * is; `DELETE` logs out. The token itself never stays in the browser.
 */
export function sessionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post<{ Body: { token: string } }>(
    '/v1/session',
    {
      config: { access: 'none' },
      schema: {
        body: {
          type: 'object',
          required: ['token'],
          additionalProperties: false,
          properties: { token: { type: 'string', minLength: 1, maxLength: 512 } },
        },
      },
    },
    async (req, reply) => {
      const caller = await ctx.auth.token(req.body.token.trim());
      if (!caller) return refused(reply, 401, 'that token is not this hub’s admin or viewer token');
      if (caller.role !== 'admin' && caller.role !== 'viewer') {
        return refused(
          reply,
          403,
          `a ${caller.role} token cannot open the dashboard; use the admin or viewer token`,
        );
      }
      ctx.sessions.delete(cookieValue(req.headers.cookie, SESSION_COOKIE));
      const { id, session } = ctx.sessions.create(caller.role);
      ctx.log.info({ role: caller.role, from: req.ip }, 'dashboard login');
      reply.header('set-cookie', sessionCookie(id, secure(req))).header('cache-control', 'no-store');
      return reply.code(201).send({ role: session.role, csrf: session.csrf, expiresAt: session.expiresAt });
    },
  );

  app.get('/v1/session', { config: { access: 'none' } }, async (req, reply) => {
    const session = ctx.sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));
    if (!session) return refused(reply, 401, 'not logged in');
    reply.header('cache-control', 'no-store');
    return { role: session.role, csrf: session.csrf, expiresAt: session.expiresAt };
  });

  app.delete('/v1/session', { config: { access: 'none' } }, async (req, reply) => {
    const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
    const session = ctx.sessions.get(id);
    // Another site must not be able to log the operator out either.
    if (session && !csrfMatches(session, req.headers[CSRF_HEADER])) {
      return refused(reply, 403, `logging out needs the session's ${CSRF_HEADER} header`);
    }
    ctx.sessions.delete(id);
    reply.header('set-cookie', sessionCookie(undefined, secure(req)));
    return { loggedOut: true };
  });
}

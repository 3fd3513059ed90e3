import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../api.js';

/** Changes are pushed at most this often: a flood of bans costs one event a second per page. */
const TICK_MS = 1000;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;
/** Open streams per hub; each is one socket and a little memory. */
const MAX_STREAMS = 200;

interface Stream {
  res: ServerResponse;
  /** False once the login behind the stream has expired or logged out. */
  valid: () => boolean;
}

/**
 * `GET /v1/events`: Server-Sent Events telling the dashboard that the decision log moved
 * (`event: head`, `data: {"head": N}`), so it re-reads the page it shows. Only the head travels,
 * never the bans: the page asks for its own filtered page of them, whatever the fleet's size.
 */
export function eventRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const streams = new Set<Stream>();
  let head = 0;
  let moved = false;
  let sinceKeepalive = 0;
  let timer: NodeJS.Timeout | undefined;

  const unsubscribe = ctx.core.onDecision((d) => {
    head = Math.max(head, d.seq);
    moved = true;
  });
  const send = (s: Stream, text: string) => {
    if (!s.valid()) return close(s);
    s.res.write(text);
  };
  const close = (s: Stream) => {
    streams.delete(s);
    s.res.end();
    if (streams.size === 0 && timer) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  const tick = () => {
    sinceKeepalive += TICK_MS;
    let text = '';
    if (moved) {
      moved = false;
      text = `event: head\ndata: ${JSON.stringify({ head })}\n\n`;
    } else if (sinceKeepalive >= KEEPALIVE_MS) {
      text = ': keep-alive\n\n';
    }
    if (!text) return;
    sinceKeepalive = 0;
    for (const s of [...streams]) send(s, text);
  };

  // Open streams would hold app.close() until the browser hangs up.
  app.addHook('preClose', async () => {
    unsubscribe();
    for (const s of [...streams]) close(s);
  });

  app.get('/v1/events', { config: { access: 'admin', viewer: true } }, async (req, reply) => {
    if (streams.size >= MAX_STREAMS) {
      return reply.code(503).send({ error: 'too many open dashboards on this hub', code: 'E_HTTP' });
    }
    const sessionId = req.sessionId;
    const valid = () => sessionId === undefined || ctx.sessions.get(sessionId) !== undefined;
    head = Math.max(head, await ctx.core.store.head());
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    const stream: Stream = { res, valid };
    streams.add(stream);
    res.write(`retry: 5000\nevent: head\ndata: ${JSON.stringify({ head })}\n\n`);
    req.raw.socket.once('close', () => close(stream));
    timer ??= setInterval(tick, TICK_MS);
    timer.unref();
  });
}

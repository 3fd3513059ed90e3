import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { RampartError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

export interface MetricsListen {
  host: string;
  port: number;
  /** When set, a scrape must send `Authorization: Bearer TOKEN`. */
  token?: string;
}

export interface MetricsServer {
  /** `http://HOST:PORT/metrics` with the bound port. */
  readonly url: string;
  close(): Promise<void>;
}

const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The agent's `/metrics` listener (opt-in: `agent.metrics.listen`). Plain HTTP on the address
 * given, by default loopback; a token, when configured, is compared by hash in constant time.
 */
export async function startMetricsServer(
  listen: MetricsListen,
  registry: Registry,
  log: Logger,
): Promise<MetricsServer> {
  const want = listen.token ? sha(listen.token) : undefined;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the agent serves GET /metrics\n');
      return;
    }
    if (want) {
      const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(req.headers.authorization ?? '');
      if (!m || !timingSafeEqual(sha(m[1]!), want)) {
        res
          .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
          .end('missing or invalid bearer token\n');
        return;
      }
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed (see the agent log)\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new RampartError(
          'E_CONFIG',
          `agent.metrics.listen: cannot listen on ${listen.host}:${listen.port}: ${err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message}`,
          { cause: err },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  if (!want && !/^(127\.|::1$|localhost$)/.test(listen.host)) {
    log.warn(
      { listen: listen.host },
      'agent metrics served beyond loopback without a token: set agent.metrics.token or tokenFile',
    );
  }
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  log.info({ url: `http://${host}:${port}/metrics`, token: Boolean(want) }, 'agent metrics listening');
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

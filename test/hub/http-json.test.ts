import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson, Unreachable } from '../../src/hub/http-json.js';

/**
 * The hub client's one request over node:http (ADR 0047: not fetch). What callers rely on: the
 * body and bearer sent, status and JSON read back, and the same error reasons fetch gave.
 */
describe('requestJson over node:http', () => {
  let srv: Server;
  let base: string;
  const seen: Array<{ method?: string; url?: string; auth?: string; type?: string; body: string }> = [];
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/echo': (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({
          method: req.method,
          url: req.url,
          auth: req.headers.authorization,
          type: req.headers['content-type'],
          body,
        });
        res.writeHead(201, { 'content-type': 'application/json' });
        // Chunked, in two writes, with a non-ASCII character split across them.
        const text = JSON.stringify({ got: body.length, word: 'légère' });
        const bytes = Buffer.from(text);
        res.write(bytes.subarray(0, text.indexOf('é') + 1));
        res.end(bytes.subarray(text.indexOf('é') + 1));
      });
    },
    '/refused': (_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{"error":"no"}');
    },
    '/text': (_req, res) => res.end('not json'),
    '/empty': (_req, res) => res.end(),
    '/silent': () => {},
    '/half': (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 50);
    },
  };
  beforeAll(async () => {
    srv = createServer((req, res) => routes[(req.url ?? '').split('?')[0]!]!(req, res));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
  });
  afterAll(() => {
    srv.closeAllConnections();
    return new Promise<void>((r) => srv.close(() => r()));
  });

  it('sends the body and bearer, reads status and JSON back (chunked, UTF-8 across chunks)', async () => {
    const body = Buffer.from(JSON.stringify({ target: '192.0.2.1' }));
    const a = await requestJson(base, 'POST', '/echo?x=1', { token: 'tok', body, timeoutMs: 2_000 });
    expect(a).toMatchObject({ status: 201, ok: true, json: { got: body.length, word: 'légère' } });
    expect(seen.at(-1)).toEqual({
      method: 'POST',
      url: '/echo?x=1',
      auth: 'Bearer tok',
      type: 'application/json',
      body: body.toString(),
    });
    await requestJson(base, 'GET', '/echo', { timeoutMs: 2_000 });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', auth: undefined, type: undefined, body: '' });
  });

  it('an error status is an answer; a body that is not JSON is undefined, an empty one {}', async () => {
    expect(await requestJson(base, 'GET', '/refused', { timeoutMs: 2_000 })).toEqual({
      status: 403,
      ok: false,
      json: { error: 'no' },
      text: '{"error":"no"}',
    });
    expect(await requestJson(base, 'GET', '/text', { timeoutMs: 2_000 })).toMatchObject({
      ok: true,
      json: undefined,
      text: 'not json',
    });
    expect((await requestJson(base, 'GET', '/empty', { timeoutMs: 2_000 })).json).toEqual({});
  });

  it('no answer within the timeout, or the caller aborting, is Unreachable with the reason fetch gave', async () => {
    const slow = await requestJson(base, 'GET', '/silent', { timeoutMs: 200 }).catch((e) => e);
    expect(slow).toBeInstanceOf(Unreachable);
    expect(slow.reason).toBe('The operation was aborted due to timeout');
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const t0 = performance.now();
    const stopped = await requestJson(base, 'GET', '/silent', { timeoutMs: 10_000, signal: ac.signal }).catch(
      (e) => e,
    );
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(stopped).toBeInstanceOf(Unreachable);
    expect(stopped.reason).toBe('This operation was aborted');
  });

  it("the timeout fires with a caller's signal too, when the heap is collected during the wait", async () => {
    // How the agent calls (its shutdown signal): Node 20 held a timeout combined with it through
    // AbortSignal.any only weakly, and a collection meanwhile left a silent hub's request pending
    // for good. Collections every 20 ms make that certain here.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const collect = setInterval(gc, 20);
    try {
      const pending = requestJson(base, 'GET', '/silent', {
        timeoutMs: 300,
        signal: new AbortController().signal,
      }).catch((e) => e);
      const outcome = await Promise.race([
        pending,
        new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000)),
      ]);
      expect(outcome).toBeInstanceOf(Unreachable);
      expect((outcome as Unreachable).reason).toBe('The operation was aborted due to timeout');
    } finally {
      clearInterval(collect);
    }
  });

  it('an answer cut off mid-body is an error, not an answer and not Unreachable', async () => {
    const err = await requestJson(base, 'GET', '/half', { timeoutMs: 2_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(Unreachable);
  });
});

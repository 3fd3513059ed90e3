import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson, Unreachable } from '../../src/hub/http-json.js';
import { freePort } from '../helpers/free-port.js';

describe('hub URL lists', () => {
  let live: Server;
  let livePort: number;
  let deadPort: number;
  const hits: string[] = [];
  beforeAll(async () => {
    live = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => live.listen(0, '127.0.0.1', r));
    livePort = (live.address() as { port: number }).port;
    deadPort = await freePort();
  });
  afterAll(() => new Promise<void>((r) => live.close(() => r())));

  it('a hub that does not answer is skipped for the next one, which then stays first', async () => {
    const list = `http://127.0.0.1:${deadPort},http://127.0.0.1:${livePort}`;
    const a = await requestJson(list, 'GET', '/v1/health', { timeoutMs: 2_000 });
    expect(a).toMatchObject({ ok: true, json: { ok: true } });
    await requestJson(list, 'GET', '/v1/health?again', { timeoutMs: 2_000 });
    expect(hits).toEqual(['/v1/health', '/v1/health?again']);
  });

  it('when no hub of the list answers, the error names the last one tried', async () => {
    const other = await freePort();
    const err = await requestJson(
      `http://127.0.0.1:${deadPort}, http://127.0.0.1:${other}`,
      'GET',
      '/v1/health',
      {
        timeoutMs: 2_000,
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(Unreachable);
    expect(err.reason).toMatch(/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });
});

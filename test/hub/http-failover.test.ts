import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstHubFor, requestJson, Unreachable } from '../../src/hub/http-json.js';
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

  it('clients with different spread keys (node names) start at different hubs, each always at the same one', async () => {
    const seen: string[][] = [[], []];
    const servers = [0, 1].map((i) =>
      createServer((req, res) => {
        seen[i]!.push(req.url ?? '');
        res.end('{}');
      }),
    );
    const ports: number[] = [];
    for (const srv of servers) {
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      ports.push((srv.address() as { port: number }).port);
    }
    try {
      const list = ports.map((p) => `http://127.0.0.1:${p}`).join(',');
      const names = Array.from({ length: 16 }, (_, i) => `web${i}`);
      for (const name of names) {
        await requestJson(list, 'POST', `/v1/reports?${name}`, { timeoutMs: 2_000, spread: name });
        await requestJson(list, 'POST', `/v1/reports?${name}`, { timeoutMs: 2_000, spread: name });
      }
      for (const name of names) {
        const at = firstHubFor(name, 2);
        expect(
          seen[at]!.filter((u) => u.endsWith(`?${name}`)),
          name,
        ).toHaveLength(2);
        expect(
          seen[1 - at]!.filter((u) => u.endsWith(`?${name}`)),
          name,
        ).toHaveLength(0);
      }
      // Spread, not all on the first URL (16 names: both hubs take a share).
      expect(seen[0]!.length).toBeGreaterThan(0);
      expect(seen[1]!.length).toBeGreaterThan(0);
      // A name whose hub is down fails over to the other, and stays there.
      const name = names.find((n) => firstHubFor(n, 2) === 0)!;
      await new Promise<void>((r) => servers[0]!.close(() => r()));
      const before = seen[1]!.length;
      await requestJson(list, 'GET', '/after', { timeoutMs: 2_000, spread: name });
      expect(seen[1]!.length).toBe(before + 1);
    } finally {
      for (const srv of servers) srv.close();
    }
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

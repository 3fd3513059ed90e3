import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from '../hub/helpers.js';

let t: TestHub;
let key: string;

async function bouncerGet(path: string, apiKey = key): Promise<{ status: number; json: unknown }> {
  const res = await fetch(new URL(path, t.hub.url), { headers: { 'x-api-key': apiKey } });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  t = await startTestHub();
  const r = await t.call('POST', '/v1/bouncers', { name: 'edge-fw' });
  expect(r.status).toBe(201);
  key = r.json.key;
});
afterAll(() => t?.close());

describe('CrowdSec bouncer API', () => {
  it('refuses a wrong or missing key with 403, and never stores the key itself', async () => {
    expect((await bouncerGet('/v1/decisions/stream?startup=true', 'rpb1.wrong')).status).toBe(403);
    const res = await fetch(new URL('/v1/decisions/stream', t.hub.url));
    expect(res.status).toBe(403);
    const list = await t.call('GET', '/v1/bouncers');
    expect(JSON.stringify(list.json)).not.toContain(key);
    expect((await t.hub.store.listBouncers())[0]!.keyHash).not.toContain(key);
  });

  it('a startup pull lists every ban in force as new, in the CrowdSec decision shape', async () => {
    await t.call('POST', '/v1/decisions', { target: '192.0.2.7', duration: '4h', reason: 'x' });
    await t.call('POST', '/v1/decisions', { target: '198.51.100.0/24', duration: 'permanent' });
    const r = await bouncerGet('/v1/decisions/stream?startup=true');
    expect(r.status).toBe(200);
    const body = r.json as { new: Array<Record<string, unknown>>; deleted: unknown };
    expect(body.deleted).toBeNull();
    const ip = body.new.find((d) => d.value === '192.0.2.7')!;
    expect(ip).toMatchObject({ type: 'ban', scope: 'Ip', origin: 'operator', scenario: 'manual' });
    expect(typeof ip.id).toBe('number');
    expect(ip.duration).toMatch(/^3h59m\d+s$|^4h0m0s$/);
    expect(body.new.find((d) => d.value === '198.51.100.0/24')).toMatchObject({ scope: 'Range' });
  });

  it('later pulls carry only the deltas since that bouncer last pulled', async () => {
    expect((await bouncerGet('/v1/decisions/stream')).json).toEqual({ new: null, deleted: null });
    await t.call('DELETE', '/v1/decisions/192.0.2.7');
    await t.call('POST', '/v1/decisions', { target: '2001:db8::/64', duration: '1h' });
    const r = (await bouncerGet('/v1/decisions/stream')).json as {
      new: Array<{ value: string }>;
      deleted: Array<{ value: string }>;
    };
    expect(r.new.map((d) => d.value)).toEqual(['2001:db8::/64']);
    expect(r.deleted.map((d) => d.value)).toEqual(['192.0.2.7']);
  });

  it('filters by scope, origin and scenario', async () => {
    const only = async (q: string) =>
      (
        (
          (await bouncerGet(`/v1/decisions/stream?startup=true&${q}`)).json as {
            new: Array<{ value: string }> | null;
          }
        ).new ?? []
      )
        .map((d) => d.value)
        .sort();
    expect(await only('scopes=ip')).toEqual([]);
    expect(await only('scopes=range')).toEqual(['198.51.100.0/24', '2001:db8::/64']);
    expect(await only('origins=sshd-node')).toEqual([]);
    expect(await only('scenarios_containing=man')).toHaveLength(2);
    expect(await only('scenarios_not_containing=manual')).toEqual([]);
  });

  it('answers ?ip= with the ranges containing it, and agents keep their ?since= page', async () => {
    const hit = (await bouncerGet('/v1/decisions?ip=198.51.100.9')).json as Array<{ value: string }>;
    expect(hit.map((d) => d.value)).toEqual(['198.51.100.0/24']);
    expect((await bouncerGet('/v1/decisions?ip=203.0.113.1')).json).toBeNull();
    expect((await bouncerGet('/v1/decisions?range=198.51.100.0/25')).json).toHaveLength(1);
    expect((await bouncerGet('/v1/decisions?ip=not-an-ip')).status).toBe(400);
    const agent = await t.call('GET', '/v1/decisions?since=0');
    expect(agent.status).toBe(200);
    expect(agent.json.head).toBeGreaterThan(0);
    expect(agent.json.decisions.length).toBeGreaterThan(0);
  });

  it('a bouncer key is read-only and stops working once removed', async () => {
    const res = await fetch(new URL('/v1/decisions', t.hub.url), {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: JSON.stringify({ target: '192.0.2.99' }),
    });
    expect(res.status).toBe(401);
    expect((await t.call('POST', '/v1/bouncers', { name: 'edge-fw' })).status).toBe(400);
    expect((await t.call('DELETE', '/v1/bouncers/edge-fw')).status).toBe(200);
    expect((await bouncerGet('/v1/decisions/stream')).status).toBe(403);
  });
});

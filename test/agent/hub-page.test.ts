import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubApi, readPage } from '../../src/agent/hub-api.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';

/**
 * Catch-up pages: the agent asks for a packed run (a tenth of the bytes of 10,000 objects) and
 * reads a plain page the same way (a hub that predates the format); either is checked decision by
 * decision as the bus path is, and refused whole when it is not a valid page.
 */
describe('catch-up pages (GET /v1/decisions?format=packed)', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
    const decisions = [
      ...Array.from({ length: 40 }, (_, i) => ({
        target: `198.51.100.${i + 1}`,
        duration: '1h',
        reason: 'bench',
      })),
      { target: '2001:db8::/64', duration: 'permanent', reason: 'other' },
    ];
    expect((await t.call('POST', '/v1/decisions/bulk', { decisions })).status).toBe(200);
    expect((await t.call('DELETE', '/v1/decisions/198.51.100.7')).status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the hub answers a packed run that reads back as the plain page, id aside', async () => {
    const plain = (await t.call('GET', '/v1/decisions?since=0&limit=30')).json;
    const packed = (await t.call('GET', '/v1/decisions?since=0&limit=30&format=packed')).json;
    expect(packed.decisions).toBeUndefined();
    expect(packed.packed).toMatchObject({ seq: 1, n: 30, reason: 'bench', action: 'ban' });
    expect(JSON.stringify(packed).length).toBeLessThan(JSON.stringify(plain).length / 3);
    const read = readPage(packed, 'test');
    expect(read.head).toBe(plain.head);
    expect(read.decisions).toEqual(plain.decisions.map((d: Record<string, unknown>) => ({ ...d, id: '' })));
  });

  it('HubApi reads the whole log, packed, with every field as the plain page has it', async () => {
    const api = new HubApi(t.hub.url, t.hub.adminToken);
    const page = await api.decisions(0);
    const plain = (await t.call('GET', '/v1/decisions?since=0&limit=10000')).json;
    expect(page.decisions.map((d) => d.seq)).toEqual(plain.decisions.map((d: { seq: number }) => d.seq));
    expect(page.decisions.at(-1)).toMatchObject({ action: 'unban', target: '198.51.100.7' });
    expect(page.decisions.find((d) => d.target === '2001:db8::/64')).toMatchObject({
      family: 6,
      duration: null,
      expiresAt: null,
      reason: 'other',
    });
  });

  it('an empty page and a snapshot stay plain pages', async () => {
    const head = (await t.call('GET', '/v1/health')).json.head as number;
    const empty = (await t.call('GET', `/v1/decisions?since=${head}&format=packed`)).json;
    expect(empty).toEqual({ head, decisions: [] });
    expect(readPage(empty, 'test')).toEqual({ head, decisions: [] });
  });

  it('a format it does not know is a 400 naming the parameter', async () => {
    const r = await t.call('GET', '/v1/decisions?since=0&format=xml');
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/format/);
  });

  it('a page that is not valid is refused whole with E_HTTP naming what is wrong', () => {
    const bad = (answer: Record<string, unknown>) => () => readPage(answer, 'http://hub GET page');
    expect(bad({ decisions: [] })).toThrow(/no valid head/);
    expect(bad({ head: 3 })).toThrow(/neither decisions nor a packed run/);
    expect(bad({ head: 3, packed: { seq: 1, n: 2, target: ['192.0.2.1'] } })).toThrow(/not a valid run/);
    expect(bad({ head: 3, packed: { seq: 1, n: 20_000, target: '192.0.2.1' } })).toThrow(/not a valid run/);
    expect(
      bad({
        head: 3,
        packed: { seq: 1, n: 2, action: ['ban', 'explode'], target: '192.0.2.1', expiresAt: null },
      }),
    ).toThrow(/decision 2 of 2 is invalid/);
    expect(
      bad({ head: 3, decisions: [{ seq: 1, action: 'ban', target: { a: 1 }, expiresAt: null }] }),
    ).toThrow(/decision 1 of 1 is invalid/);
    expect(bad({ head: 'x' })).toThrow(expect.objectContaining({ code: 'E_HTTP' }));
  });
});

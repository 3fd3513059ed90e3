import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIPv4, parseTarget } from '../../src/core/address.js';
import { resolveHubSection } from '../../src/hub/config.js';
import { startTestHub, type TestHub } from './helpers.js';

let t: TestHub;
let bouncerKey: string;
let nodeToken: string;

/** A GET with any headers, returning what a router would see. */
async function pull(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, t.hub.url), { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
const admin = () => ({ authorization: `Bearer ${t.hub.adminToken}` });

beforeAll(async () => {
  t = await startTestHub();
  bouncerKey = (await t.call('POST', '/v1/bouncers', { name: 'edge-router' })).json.key;
  nodeToken = (await t.enrol('web1')).token;
  const bans = [
    { target: '192.0.2.1', duration: '1h', reason: 'ssh, brute force' },
    { target: '192.0.2.1', duration: '2h', set: 'web', reason: '=HYPERLINK("x")' },
    { target: '198.51.100.0/25', duration: '1h' },
    { target: '198.51.100.128/25', duration: 'permanent' },
    { target: '2001:db8::1', duration: 'permanent' },
    { target: '2001:db8:1::/64', duration: '1d' },
  ];
  for (const b of bans) expect((await t.call('POST', '/v1/decisions', b)).status).toBe(201);
});
afterAll(async () => {
  await t?.close();
});

describe('GET /v1/blocklist for edge routers', () => {
  it('plain text by default: one address or CIDR per line, one line per target', async () => {
    const r = await pull('/v1/blocklist', admin());
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(r.text.split('\n').filter(Boolean).sort()).toEqual(
      ['192.0.2.1', '198.51.100.0/25', '198.51.100.128/25', '2001:db8:1::/64', '2001:db8::1'].sort(),
    );
    expect(r.text.endsWith('\n')).toBe(true);
  });

  it('JSON, CSV with a header, and the path suffix choosing the format', async () => {
    const json = await pull('/v1/blocklist?format=json&family=4&set=web', admin());
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(json.text);
    expect(body.head).toBeGreaterThan(0);
    expect(body.items).toEqual([
      expect.objectContaining({ target: '192.0.2.1', family: 4, set: 'web', origin: 'operator' }),
    ]);
    expect(JSON.parse((await pull('/v1/blocklist.json?set=nosuch', admin())).text).items).toEqual([]);

    const csv = await pull('/v1/blocklist.csv?family=4', admin());
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\n');
    expect(lines[0]).toBe('target,family,set,expires_at,origin,rule,reason');
    // One row per (target, set); a comma is quoted, a formula is defused.
    expect(lines).toContainEqual(
      expect.stringMatching(/^192\.0\.2\.1,4,blocklist,\d{4}-.*Z,operator,manual,"ssh, brute force"$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^192\.0\.2\.1,4,web,.*,"'=HYPERLINK\(""x""\)"$/));
    expect(lines).toContainEqual('198.51.100.128/25,4,blocklist,,operator,manual,manual ban');
    expect(lines).toHaveLength(5);

    const txt = await pull('/v1/blocklist.txt?family=6', admin());
    expect(txt.text.split('\n').filter(Boolean).sort()).toEqual(['2001:db8:1::/64', '2001:db8::1']);
  });

  it('a RouterOS script: old entries removed, IPv4 and IPv6 menus, timeouts, a quoted list name', async () => {
    const r = await pull(`/v1/blocklist.rsc?list=${encodeURIComponent('edge "$x?\\')}`, admin());
    expect(r.status).toBe(200);
    const lines = r.text.trimEnd().split('\n');
    const list = '"edge \\"\\$x\\?\\\\"';
    expect(lines[0]).toMatch(/^# rampart blocklist at decision log head \d+$/);
    expect(lines[1]).toBe(`/ip firewall address-list remove [find list=${list}]`);
    expect(lines[2]).toBe(`/ipv6 firewall address-list remove [find list=${list}]`);
    const adds = lines.slice(3);
    // The longest of the two bans on 192.0.2.1 (2h) wins; permanent bans have no timeout.
    expect(adds).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^/ip firewall address-list add list=${reEscape(list)} address=192\\.0\\.2\\.1 timeout=(1h59m\\d+s|2h)$`,
        ),
      ),
    );
    expect(adds).toContainEqual(`/ip firewall address-list add list=${list} address=198.51.100.128/25`);
    expect(adds).toContainEqual(`/ipv6 firewall address-list add list=${list} address=2001:db8::1/128`);
    expect(adds).toContainEqual(
      expect.stringMatching(
        /^\/ipv6 firewall address-list add list=.* address=2001:db8:1::\/64 timeout=(23h59m\d+s|1d)$/,
      ),
    );
    expect(adds).toHaveLength(5);
    for (const line of adds)
      expect(line).toMatch(
        /^\/ip(v6)? firewall address-list add list="(?:[^"\\]|\\.)*" address=[0-9a-f.:/]+( timeout=(\d+[wdhms])+)?$/,
      );

    const six = await pull('/v1/blocklist?format=mikrotik&family=6', admin());
    expect(six.text).not.toContain('/ip firewall');
    expect(six.text).toContain('/ipv6 firewall address-list remove [find list="rampart"]');
  });

  it('?aggregate=1 merges adjacent ranges exactly, keeping the earliest expiry', async () => {
    const txt = await pull('/v1/blocklist?aggregate=1&family=4', admin());
    expect(txt.text).toBe('192.0.2.1\n198.51.100.0/24\n');
    const rsc = await pull('/v1/blocklist.rsc?aggregate=true&family=4', admin());
    expect(rsc.text).toMatch(/address=198\.51\.100\.0\/24 timeout=(59m\d+s|1h)\n/);
  });

  it('bad parameters get a 400 naming them', async () => {
    for (const bad of [
      'format=xml',
      'family=5',
      'aggregate=yes',
      'list=',
      'colour=red',
      `list=${'x'.repeat(65)}`,
    ]) {
      const r = await t.call('GET', `/v1/blocklist?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.json.code, bad).toBe('E_USAGE');
    }
    const clash = await t.call('GET', '/v1/blocklist.csv?format=json');
    expect(clash).toMatchObject({ status: 400, json: { code: 'E_USAGE' } });
    expect(clash.json.error).toContain('.csv');
  });

  it('is closed by default: a bouncer key (header or ?key=), a node or the admin token open it', async () => {
    const none = await pull('/v1/blocklist');
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text).error).toMatch(/\?key=.*bearer token/);
    expect((await pull('/v1/blocklist', { authorization: `Bearer ${nodeToken}` })).status).toBe(200);
    expect((await pull(`/v1/blocklist?key=${encodeURIComponent(bouncerKey)}`)).status).toBe(200);
    expect((await pull('/v1/blocklist.rsc', { 'x-api-key': bouncerKey })).status).toBe(200);
    const wrong = await pull('/v1/blocklist?key=rpb1.wrong');
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.text).error).toContain('?key=');
    // A key in the URL opens the list only, nothing else.
    expect((await pull(`/v1/decisions/active?key=${encodeURIComponent(bouncerKey)}`)).status).toBe(401);
  });

  it('ETag and If-None-Match: 304 while nothing changed, a new list after a ban and after an expiry', async () => {
    const first = await pull('/v1/blocklist?family=4', admin());
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/".+"$/);
    const again = await pull('/v1/blocklist?family=4', { ...admin(), 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    // Another query is another list.
    const other = await pull('/v1/blocklist?family=6', { ...admin(), 'if-none-match': etag });
    expect(other.status).toBe(200);

    await t.call('POST', '/v1/decisions', { target: '203.0.113.9', duration: '1s' });
    const changed = await pull('/v1/blocklist?family=4', { ...admin(), 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.text).toContain('203.0.113.9');
    const etag2 = changed.headers.get('etag')!;
    expect(etag2).not.toBe(etag);
    // An expiry writes nothing to the log, yet the list changes: so does the tag (polled: an
    // expiry is a moment, not an event).
    let after = changed;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      after = await pull('/v1/blocklist?family=4', { ...admin(), 'if-none-match': etag2 });
      if (after.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after.status).toBe(200);
    expect(after.text).not.toContain('203.0.113.9');
  });

  it('streams a list longer than one store page, each target once, in order', async () => {
    const now = Date.now();
    const many = Array.from({ length: 12_000 }, (_, i) => {
      const target = formatIPv4((203 << 24) + (113 << 16) + 0x8000 + i);
      return {
        action: 'ban' as const,
        target,
        family: 4 as const,
        duration: 3600,
        expiresAt: now + 3600_000,
        reason: 'bulk',
        rule: 'test',
        origin: 'import',
        createdAt: now,
        set: i % 2 ? 'blocklist' : 'web',
      };
    });
    // Every tenth target is also in the other set: still one line.
    const twice = many
      .filter((_, i) => i % 10 === 0)
      .map((d) => ({ ...d, set: d.set === 'web' ? 'blocklist' : 'web' }));
    await t.hub.store.append([...many, ...twice]);
    const r = await pull('/v1/blocklist?family=4', admin());
    const lines = r.text.trimEnd().split('\n');
    const bulk = lines.filter((l) => l.startsWith('203.113.'));
    expect(bulk).toHaveLength(12_000);
    expect(new Set(bulk).size).toBe(12_000);
    const agg = await pull('/v1/blocklist?family=4&aggregate=1', admin());
    const merged = agg.text
      .trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('203.113.'));
    let covered = 0n;
    for (const m of merged) {
      const p = parseTarget(m);
      covered += p.last - p.first + 1n;
    }
    expect(covered).toBe(12_000n);
    expect(merged.length).toBeLessThan(10);
  });
});

describe('GET /v1/blocklist with hub.blocklist.public', () => {
  it('the switch is a boolean, and a wrong value names hub.blocklist.public', () => {
    expect(resolveHubSection({ blocklist: { public: true } }).blocklistPublic).toBe(true);
    expect(resolveHubSection({}).blocklistPublic).toBeUndefined();
    expect(() => resolveHubSection({ blocklist: { public: 'yes' } }, 'rampart.yaml')).toThrow(
      /hub\.blocklist\.public/,
    );
  });

  it('answers without any key, and still refuses a wrong one nowhere else', async () => {
    const open = await startTestHub({ blocklistPublic: true });
    try {
      await open.call('POST', '/v1/decisions', { target: '192.0.2.77' });
      const r = await fetch(new URL('/v1/blocklist', open.hub.url));
      expect(r.status).toBe(200);
      expect(await r.text()).toBe('192.0.2.77\n');
      expect((await fetch(new URL('/v1/decisions/active', open.hub.url))).status).toBe(401);
    } finally {
      await open.close();
    }
  });
});

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

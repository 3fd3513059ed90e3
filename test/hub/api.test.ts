import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEncryptionKey, open, ReplayCache, seal } from '../../src/trust/envelope.js';
import { generateKeyPair } from '../../src/trust/keys.js';
import { startTestHub, type TestHub } from './helpers.js';

describe('hub HTTP API', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('health needs no token; everything else refuses a missing or wrong token', async () => {
    expect(await t.call('GET', '/v1/health', undefined, '')).toMatchObject({
      status: 200,
      json: { ok: true },
    });
    expect((await t.call('GET', '/v1/decisions', undefined, '')).status).toBe(401);
    expect((await t.call('GET', '/v1/decisions', undefined, 'rpa1.wrong')).json).toEqual({
      error: 'missing or invalid bearer token',
      code: 'E_AUTH',
    });
    expect((await t.call('GET', '/v1/nope')).status).toBe(404);
  });

  it('writes the admin token 0600 and hub.json with the real URL and fleet', () => {
    const dir = join(t.dataDir, 'hub');
    expect(statSync(join(dir, 'admin.token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'hub.key')).mode & 0o777).toBe(0o600);
    const info = JSON.parse(readFileSync(join(dir, 'hub.json'), 'utf8'));
    expect(info).toMatchObject({ url: t.hub.url, fleet: 'default' });
    expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(info.url).not.toMatch(/:0$/);
  });

  it('ban, list, blocklist and unban round-trip through the log', async () => {
    const head0 = (await t.call('GET', '/v1/health')).json.head as number;
    const ban = await t.call('POST', '/v1/decisions', {
      target: '192.0.2.10',
      duration: '12h',
      reason: 'scanner',
    });
    expect(ban.status).toBe(201);
    expect(ban.json).toMatchObject({
      seq: head0 + 1,
      action: 'ban',
      target: '192.0.2.10',
      duration: 43200,
      origin: 'operator',
    });
    const ban6 = await t.call('POST', '/v1/decisions', { target: '2001:DB8::/64', duration: 'permanent' });
    expect(ban6.json).toMatchObject({ target: '2001:db8::/64', family: 6, duration: null, expiresAt: null });

    const page = await t.call('GET', `/v1/decisions?since=${head0}`);
    expect(page.json.head).toBe(head0 + 2);
    expect(page.json.decisions.map((d: { seq: number }) => d.seq)).toEqual([head0 + 1, head0 + 2]);
    expect(page.json.snapshot).toBeUndefined();
    const limited = await t.call('GET', `/v1/decisions?since=${head0}&limit=1`);
    expect(limited.json.decisions).toHaveLength(1);

    const active = await t.call('GET', '/v1/decisions/active');
    expect(active.json.decisions.map((d: { target: string }) => d.target)).toEqual(
      expect.arrayContaining(['192.0.2.10', '2001:db8::/64']),
    );
    const block = await t.call('GET', '/v1/blocklist');
    expect(block.text.split('\n')).toEqual(expect.arrayContaining(['192.0.2.10', '2001:db8::/64']));

    const un = await t.call('DELETE', `/v1/decisions/${encodeURIComponent('2001:db8::/64')}`);
    expect(un).toMatchObject({
      status: 200,
      json: { action: 'unban', target: '2001:db8::/64', seq: head0 + 3 },
    });
    expect((await t.call('DELETE', `/v1/decisions/${encodeURIComponent('2001:db8::/64')}`)).status).toBe(404);
    expect((await t.call('GET', '/v1/blocklist')).text).not.toContain('2001:db8::/64');
  });

  it('GET /v1/bans pages newest first, filters, finds a range by an address inside it, and counts', async () => {
    for (const target of ['192.0.2.40', '192.0.2.41', '198.51.100.0/24']) {
      expect((await t.call('POST', '/v1/decisions', { target, reason: 'bans-route' })).status).toBe(201);
    }
    const first = await t.call('GET', '/v1/bans?limit=2&origin=operator&since=1h');
    expect(first.status).toBe(200);
    expect(first.json.items.map((d: { target: string }) => d.target)).toEqual([
      '198.51.100.0/24',
      '192.0.2.41',
    ]);
    expect(typeof first.json.next).toBe('string');
    const total = first.json.total as number;
    expect(total).toBeGreaterThanOrEqual(3);
    const second = await t.call('GET', `/v1/bans?limit=2&origin=operator&since=1h&cursor=${first.json.next}`);
    expect(second.json.items[0].target).toBe('192.0.2.40');
    const inside = await t.call('GET', '/v1/bans?target=198.51.100.77');
    expect(inside.json).toMatchObject({ total: 1, next: null, items: [{ target: '198.51.100.0/24' }] });
    const status = await t.call('GET', '/v1/status');
    expect(status.json.decisions.active).toBe((await t.call('GET', '/v1/bans?limit=1')).json.total);
    expect(status.json.decisions.byOrigin.operator).toBeGreaterThanOrEqual(3);
    const metrics = await t.call('GET', '/metrics');
    expect(metrics.text).toContain(`rampart_hub_active_bans ${status.json.decisions.active}`);
    for (const bad of ['limit=0', 'limit=x', 'target=nope', 'since=later', 'cursor=zz', 'colour=red']) {
      const r = await t.call('GET', `/v1/bans?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.json.code, bad).toMatch(/^E_(USAGE|ADDRESS)$/);
    }
    const covered = await t.call('DELETE', '/v1/decisions/198.51.100.7');
    expect(covered.status).toBe(404);
    expect(covered.json.error).toContain('198.51.100.0/24 covers it');
    for (const target of ['192.0.2.40', '192.0.2.41', '198.51.100.0/24']) {
      expect((await t.call('DELETE', `/v1/decisions/${encodeURIComponent(target)}`)).status).toBe(200);
    }
  });

  it('bad input is a 400 naming the field, unbannable targets a 422, and nothing is appended', async () => {
    const head = (await t.call('GET', '/v1/health')).json.head;
    const cases: Array<[unknown, number, RegExp]> = [
      [{}, 400, /body\/target/],
      [{ target: 'not-an-address' }, 400, /not an IPv4 or IPv6 address/],
      [{ target: '192.0.2.1', duration: 'soon' }, 400, /duration/],
      [{ target: '192.0.2.1', extra: 1 }, 400, /extra|additional/],
      [{ target: '192.0.2.1', set: '../etc' }, 400, /not a valid set name/],
      [{ target: 'x'.repeat(500) }, 400, /body\/target/],
      [{ target: '127.0.0.1' }, 422, /loopback/],
      [{ target: '0.0.0.0/0' }, 422, /whole IPv4 internet/],
      ['{not json', 400, /JSON/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await t.call('POST', '/v1/decisions', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.json.error).toMatch(msg);
      expect(r.json.code).toMatch(/^E_/);
    }
    expect((await t.call('GET', '/v1/decisions?since=-1')).status).toBe(400);
    expect((await t.call('GET', '/v1/health')).json.head).toBe(head);
  });

  it('an allowlisted address is never banned, and allowlisting unbans what it covers', async () => {
    await t.call('POST', '/v1/decisions', { target: '203.0.113.5' });
    const added = await t.call('POST', '/v1/allowlist', { cidr: '203.0.113.0/24', comment: 'office' });
    expect(added.status).toBe(201);
    expect(added.json.unbanned).toEqual([
      expect.objectContaining({ action: 'unban', target: '203.0.113.5' }),
    ]);
    const refused = await t.call('POST', '/v1/decisions', { target: '203.0.113.77' });
    expect(refused).toMatchObject({ status: 422, json: { code: 'E_UNBANNABLE' } });
    expect(refused.json.error).toMatch(/allowlisted \(203\.0\.113\.0\/24\)/);
    const list = await t.call('GET', '/v1/allowlist');
    expect(list.json.entries).toEqual([
      expect.objectContaining({ cidr: '203.0.113.0/24', comment: 'office' }),
    ]);
    expect((await t.call('DELETE', '/v1/allowlist', { cidr: '203.0.113.0/24' })).status).toBe(200);
    expect((await t.call('DELETE', '/v1/allowlist?cidr=203.0.113.0/24')).status).toBe(404);
    expect((await t.call('POST', '/v1/decisions', { target: '203.0.113.77' })).status).toBe(201);
  });

  it('nodes: a join token works once, the node token reads but cannot write, removal revokes it', async () => {
    const added = await t.call('POST', '/v1/nodes', { name: 'web1' });
    expect(added.status).toBe(201);
    expect(added.json.token).toMatch(/^rpj1\./);
    expect((await t.call('POST', '/v1/nodes', { name: 'web1' })).status).toBe(409);
    expect((await t.call('POST', '/v1/nodes', { name: 'bad/name' })).status).toBe(400);
    expect((await t.call('POST', '/v1/nodes', { name: 'hub' })).json.error).toMatch(/reserved/);
    const keys = generateKeyPair();
    const { publicKeyToText } = await import('../../src/trust/keys.js');
    const pk = publicKeyToText(keys.publicKey);
    expect(
      (await t.call('POST', '/v1/join', { token: added.json.token, name: 'web2', publicKey: pk }, '')).status,
    ).toBe(400);
    expect(
      (await t.call('POST', '/v1/join', { token: 'rpj1.garbage', name: 'web1', publicKey: pk }, '')).status,
    ).toBe(400);
    const joined = await t.call(
      'POST',
      '/v1/join',
      { token: added.json.token, name: 'web1', publicKey: pk },
      '',
    );
    expect(joined.status).toBe(200);
    expect(joined.json).toMatchObject({
      hubPublicKey: t.hub.publicKeyText,
      fleet: 'default',
      bus: { type: 'mqtt' },
    });
    expect(joined.json.bus.url).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    const again = await t.call(
      'POST',
      '/v1/join',
      { token: added.json.token, name: 'web1', publicKey: pk },
      '',
    );
    expect(again).toMatchObject({ status: 403, json: { code: 'E_AUTH' } });

    const node = joined.json.nodeToken as string;
    expect((await t.call('GET', '/v1/decisions', undefined, node)).status).toBe(200);
    expect((await t.call('GET', '/v1/blocklist', undefined, node)).status).toBe(200);
    expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.99' }, node)).status).toBe(403);
    expect((await t.call('GET', '/v1/nodes', undefined, node)).status).toBe(403);

    const nodes = await t.call('GET', '/v1/nodes');
    expect(nodes.json.nodes).toEqual([expect.objectContaining({ name: 'web1', state: 'enrolled' })]);
    const status = await t.call('GET', '/v1/status');
    expect(status.json).toMatchObject({
      head: expect.any(Number),
      nodes: [{ name: 'web1', lastSeq: 0 }],
      bus: { type: 'mqtt' },
    });
    expect(status.json.nodes[0].lag).toBe(status.json.head);

    expect((await t.call('DELETE', '/v1/nodes/web1')).status).toBe(200);
    expect((await t.call('DELETE', '/v1/nodes/web1')).status).toBe(404);
    expect((await t.call('GET', '/v1/decisions', undefined, node)).status).toBe(401);
  });

  it('POST /v1/reports takes a sealed report from the node that owns the token, refuses others', async () => {
    const a = await t.enrol('rep-a');
    const b = await t.enrol('rep-b');
    const body = {
      target: '198.51.100.44',
      rule: 'sshd',
      reason: '',
      hits: 5,
      duration: 600,
      at: Date.now(),
    };
    const env = seal('report', body, 'rep-a', a.keys.privateKey).toString();
    const ok = await t.call('POST', '/v1/reports', env, a.token);
    expect(ok).toMatchObject({
      status: 200,
      json: { result: 'ban', decision: { target: '198.51.100.44', origin: 'rep-a' } },
    });
    expect((await t.call('POST', '/v1/reports', env, a.token)).json.error).toMatch(/replay/);
    const asB = seal('report', body, 'rep-a', a.keys.privateKey).toString();
    expect((await t.call('POST', '/v1/reports', asB, b.token)).status).toBe(403);
    const forged = seal('report', body, 'rep-a', generateKeyPair().privateKey).toString();
    expect((await t.call('POST', '/v1/reports', forged, a.token)).json.error).toMatch(/bad-signature/);
    expect((await t.call('POST', '/v1/reports', env, t.hub.adminToken)).status).toBe(403);
    const hb = seal(
      'heartbeat',
      { lastSeq: 3, active: 1, version: '9.9.9' },
      'rep-b',
      b.keys.privateKey,
    ).toString();
    expect((await t.call('POST', '/v1/reports', hb, b.token)).json).toEqual({ result: 'ok' });
    const st = await t.call('GET', '/v1/status');
    expect(st.json.nodes.find((n: { name: string }) => n.name === 'rep-b')).toMatchObject({
      lastSeq: 3,
      version: '9.9.9',
    });
  });

  it('serves Prometheus metrics to the admin or the read-only metrics token, and to nobody else', async () => {
    expect((await t.call('GET', '/metrics', undefined, '')).status).toBe(401);
    expect((await t.call('GET', '/metrics', undefined, 'rpa1.wrong')).status).toBe(401);
    const { readFileSync: read } = await import('node:fs');
    const metricsToken = read(join(t.dataDir, 'hub', 'metrics.token'), 'utf8').trim();
    // The metrics token opens nothing else.
    expect((await t.call('GET', '/v1/status', undefined, metricsToken)).status).toBe(403);
    expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.99' }, metricsToken)).status).toBe(403);
    expect((await t.call('GET', '/metrics', undefined, metricsToken)).status).toBe(200);
    const m = await t.call('GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/rampart_hub_decisions_total\{action="ban",origin="operator"\} \d+/);
    expect(m.text).toMatch(/rampart_hub_active_bans \d+/);
    expect(m.text).toMatch(/rampart_hub_dropped_messages_total\{reason="bad-signature"\} 1/);
  });
});

describe('hub decision log across restarts and retention', () => {
  it('seq has no gaps across a restart; the key, token and bans survive', async () => {
    const t = await startTestHub();
    try {
      for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3'])
        await t.call('POST', '/v1/decisions', { target: ip });
      const key = t.hub.publicKeyText;
      const token = t.hub.adminToken;
      await t.restart();
      expect(t.hub.publicKeyText).toBe(key);
      expect(t.hub.adminToken).toBe(token);
      await t.call('DELETE', '/v1/decisions/192.0.2.2');
      await t.call('POST', '/v1/decisions', { target: '192.0.2.4' });
      const all = await t.call('GET', '/v1/decisions?since=0');
      expect(all.json.decisions.map((d: { seq: number }) => d.seq)).toEqual([1, 2, 3, 4, 5]);
      const active = await t.call('GET', '/v1/decisions/active');
      expect(active.json.decisions.map((d: { target: string }) => d.target).sort()).toEqual([
        '192.0.2.1',
        '192.0.2.3',
        '192.0.2.4',
      ]);
    } finally {
      await t.close();
    }
  });

  it('a cursor older than retention gets a snapshot of the active bans; expired bans leave silently', async () => {
    let now = 1_800_000_000_000;
    const t = await startTestHub();
    try {
      const core = t.hub.core as unknown as { now: () => number };
      Object.defineProperty(core, 'now', { value: () => now });
      await t.call('POST', '/v1/decisions', { target: '192.0.2.1', duration: 60 });
      await t.call('POST', '/v1/decisions', { target: '192.0.2.2', duration: 'permanent' });
      await t.call('POST', '/v1/decisions', { target: '192.0.2.3', duration: '1d' });
      await t.call('DELETE', '/v1/decisions/192.0.2.3');
      now += 3_600_000;
      await t.hub.core.sweep(60_000);
      const page = await t.call('GET', '/v1/decisions?since=0');
      expect(page.json).toMatchObject({ head: 4, snapshot: true });
      expect(page.json.decisions.map((d: { target: string }) => d.target)).toEqual(['192.0.2.2']);
      expect((await t.call('GET', '/v1/decisions?since=4')).json).toEqual({ head: 4, decisions: [] });
    } finally {
      await t.close();
    }
  });
});

describe('hub rate limits', () => {
  it('a node over its budget is refused and counted; another node and the operator are not affected', async () => {
    const t = await startTestHub({ policy: { rateBurst: 2, ratePerMinute: 0 } });
    try {
      const a = await t.enrol('flood');
      const b = await t.enrol('calm');
      const report = (name: string, keys: typeof a.keys, ip: string) =>
        seal(
          'report',
          { target: ip, rule: 'sshd', reason: '', hits: 5, duration: 60, at: Date.now() },
          name,
          keys.privateKey,
        ).toString();
      const results: string[] = [];
      for (let i = 1; i <= 5; i++) {
        results.push(
          (await t.call('POST', '/v1/reports', report('flood', a.keys, `203.0.113.${i}`), a.token)).json
            .result,
        );
      }
      expect(results).toEqual(['ban', 'ban', 'refused', 'refused', 'refused']);
      const last = await t.call('POST', '/v1/reports', report('flood', a.keys, '203.0.113.9'), a.token);
      expect(last.json).toEqual({
        result: 'refused',
        refusal: 'rate-limited',
        reason: 'node flood is over its decision budget',
      });
      expect(await t.hub.metrics.value('rampart_hub_reports_total', { result: 'rate-limited' })).toBe(4);
      expect(
        (await t.call('POST', '/v1/reports', report('calm', b.keys, '203.0.113.50'), b.token)).json.result,
      ).toBe('ban');
      expect((await t.call('POST', '/v1/decisions', { target: '203.0.113.60' })).status).toBe(201);
      expect((await t.call('GET', '/v1/decisions/active')).json.decisions).toHaveLength(4);
    } finally {
      await t.close();
    }
  });
});

describe('hub with bus encryption', () => {
  it('accepts only encrypted reports and encrypts the decisions it publishes', async () => {
    const key = generateEncryptionKey();
    const t = await startTestHub({ bus: { type: 'embedded', encryptionKey: key.toString('base64') } });
    try {
      const n = await t.enrol('enc1');
      const published: Buffer[] = [];
      await t.hub.bus.subscribe('rampart/default/decisions', (_topic, p) => published.push(p));
      const body = { target: '192.0.2.33', rule: 'sshd', reason: '', hits: 5, duration: 60, at: Date.now() };
      const plain = seal('report', body, 'enc1', n.keys.privateKey).toString();
      expect((await t.call('POST', '/v1/reports', plain, n.token)).json.error).toMatch(/unencrypted/);
      const sealed = seal('report', body, 'enc1', n.keys.privateKey, { encryptKey: key }).toString();
      const ok = await t.call('POST', '/v1/reports', sealed, n.token);
      expect(ok.json).toMatchObject({ result: 'ban', decision: { target: '192.0.2.33' } });
      const allow = await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.128/25' });
      expect(allow.status).toBe(201);
      const refused = seal('report', { ...body, target: '192.0.2.200' }, 'enc1', n.keys.privateKey, {
        encryptKey: key,
      });
      expect((await t.call('POST', '/v1/reports', refused.toString(), n.token)).json).toMatchObject({
        result: 'refused',
        refusal: 'allowlisted',
      });
      const end = Date.now() + 3000;
      while (published.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      const wire = JSON.parse(published[0]!.toString());
      expect(wire.enc).toMatchObject({ alg: 'A256GCM' });
      expect(wire.body).not.toContain('192.0.2.33');
      const opened = open(published[0]!, {
        keyFor: () => t.hub.publicKey,
        replay: new ReplayCache(),
        decryptKey: key,
      });
      expect(opened.ok && opened.env.body).toMatchObject({ target: '192.0.2.33', action: 'ban' });
    } finally {
      await t.close();
    }
  });
});

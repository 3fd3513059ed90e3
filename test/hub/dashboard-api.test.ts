import { readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cookieValue,
  SESSION_TTL_MS,
  SessionStore,
  sessionCookie,
} from '../../src/hub/dashboard/sessions.js';
import { startTestHub, type TestHub } from './helpers.js';

/** A fetch with a cookie and headers of our choosing (the helper only knows bearer tokens). */
async function raw(
  t: TestHub,
  method: string,
  path: string,
  opts: { cookie?: string; headers?: Record<string, string>; body?: unknown } = {},
) {
  const res = await fetch(new URL(path, t.hub.url), {
    method,
    headers: {
      ...(opts.cookie ? { cookie: opts.cookie } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {}
  // biome-ignore lint/suspicious/noExplicitAny: checked field by field below
  return { status: res.status, headers: res.headers, text, json: json as any };
}

describe('hub dashboard: page, viewer token, sessions, timeline, events', () => {
  let t: TestHub;
  let viewer: string;

  beforeAll(async () => {
    t = await startTestHub();
    viewer = readFileSync(join(t.dataDir, 'hub', 'viewer.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves the page and its files with their types, a strict CSP and no inline script', async () => {
    const page = await raw(t, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    // Every script comes from a file; no inline handlers.
    for (const m of page.text.matchAll(/<script\b[^>]*>/g)) expect(m[0]).toMatch(/\bsrc="\/dashboard\//);
    expect(page.text).not.toMatch(/\son[a-z]+=/i);
    expect(page.text).not.toMatch(/\sstyle=/i);
    const js = await raw(t, 'GET', '/dashboard/app.js');
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.text).not.toContain('innerHTML');
    expect((await raw(t, 'GET', '/dashboard/style.css')).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );
    const again = await raw(t, 'GET', '/dashboard/app.js', {
      headers: { 'if-none-match': js.headers.get('etag') ?? '' },
    });
    expect(again.status).toBe(304);
    expect((await raw(t, 'GET', '/dashboard/..%2Fsessions.js')).status).toBe(404);
    expect((await raw(t, 'GET', '/dashboard/nope.js')).status).toBe(404);
  });

  it('creates viewer.token 0600 next to the admin token; it reads the dashboard routes and changes nothing', async () => {
    expect(statSync(join(t.dataDir, 'hub', 'viewer.token')).mode & 0o777).toBe(0o600);
    expect(viewer).toMatch(/^rpv1\./);
    expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.10' })).status).toBe(201);
    for (const path of ['/v1/bans', '/v1/status', '/v1/nodes', '/v1/allowlist', '/v1/timeline']) {
      expect((await t.call('GET', path, undefined, viewer)).status, path).toBe(200);
    }
    expect((await t.call('GET', '/v1/bans?target=192.0.2.0/24', undefined, viewer)).json.total).toBe(1);
    const unban = await t.call('DELETE', '/v1/decisions/192.0.2.10', undefined, viewer);
    expect(unban.status).toBe(403);
    expect(unban.json.error).toContain('viewer token only reads');
    expect((await t.call('POST', '/v1/decisions', { target: '192.0.2.11' }, viewer)).status).toBe(403);
    expect((await t.call('POST', '/v1/allowlist', { cidr: '192.0.2.0/24' }, viewer)).status).toBe(403);
    expect((await t.call('POST', '/v1/nodes', { name: 'sneaky' }, viewer)).status).toBe(403);
    // Routes not meant for the dashboard stay closed to it.
    expect((await t.call('GET', '/v1/decisions?since=0', undefined, viewer)).status).toBe(403);
    expect((await t.call('GET', '/metrics', undefined, viewer)).status).toBe(403);
    expect((await t.call('GET', '/v1/bans')).json.total).toBe(1);
  });

  it('a login trades the token for an HttpOnly SameSite=Strict cookie; changes need the CSRF header', async () => {
    const wrong = await raw(t, 'POST', '/v1/session', { body: { token: 'rpa1.wrong' } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const metrics = readFileSync(join(t.dataDir, 'hub', 'metrics.token'), 'utf8').trim();
    expect((await raw(t, 'POST', '/v1/session', { body: { token: metrics } })).status).toBe(403);
    expect((await raw(t, 'POST', '/v1/session', { body: {} })).status).toBe(400);

    const login = await raw(t, 'POST', '/v1/session', { body: { token: t.hub.adminToken } });
    expect(login.status).toBe(201);
    expect(login.json.role).toBe('admin');
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^rampart_session=[\w-]{40,};/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    const cookie = setCookie.split(';')[0]!;
    const csrf = login.json.csrf as string;

    expect((await raw(t, 'GET', '/v1/session', { cookie })).json).toMatchObject({ role: 'admin', csrf });
    expect((await raw(t, 'GET', '/v1/bans', { cookie })).json.total).toBe(1);
    // A forged cross-site form would carry the cookie (were SameSite absent) but not the token.
    const noCsrf = await raw(t, 'DELETE', '/v1/decisions/192.0.2.10', { cookie });
    expect(noCsrf.status).toBe(403);
    const badCsrf = await raw(t, 'DELETE', '/v1/decisions/192.0.2.10', {
      cookie,
      // Its last character changed (to one it is not: a token ending in x stayed valid before).
      headers: { 'x-rampart-csrf': `${csrf.slice(0, -1)}${csrf.endsWith('x') ? 'y' : 'x'}` },
    });
    expect(badCsrf.status).toBe(403);
    expect((await t.call('GET', '/v1/bans')).json.total).toBe(1);
    const ok = await raw(t, 'DELETE', '/v1/decisions/192.0.2.10', {
      cookie,
      headers: { 'x-rampart-csrf': csrf },
    });
    expect(ok.status).toBe(200);
    expect((await t.call('GET', '/v1/bans')).json.total).toBe(0);

    expect((await raw(t, 'DELETE', '/v1/session', { cookie })).status).toBe(403);
    const out = await raw(t, 'DELETE', '/v1/session', { cookie, headers: { 'x-rampart-csrf': csrf } });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await raw(t, 'GET', '/v1/bans', { cookie })).status).toBe(401);
  });

  it("a viewer's session reads but cannot unban, even with its CSRF token", async () => {
    await t.call('POST', '/v1/decisions', { target: '192.0.2.20' });
    const login = await raw(t, 'POST', '/v1/session', { body: { token: viewer } });
    expect(login.json.role).toBe('viewer');
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect((await raw(t, 'GET', '/v1/bans?target=192.0.2.20', { cookie })).json.total).toBe(1);
    const unban = await raw(t, 'DELETE', '/v1/decisions/192.0.2.20', {
      cookie,
      headers: { 'x-rampart-csrf': login.json.csrf },
    });
    expect(unban.status).toBe(403);
    expect((await t.call('GET', '/v1/bans?target=192.0.2.20')).json.total).toBe(1);
  });

  it('the timeline counts bans per minute over a bounded window, the current minute last', async () => {
    for (const a of ['192.0.2.31', '192.0.2.32', '192.0.2.33'])
      await t.call('POST', '/v1/decisions', { target: a });
    const tl = await t.call('GET', '/v1/timeline?minutes=30');
    expect(tl.status).toBe(200);
    expect(tl.json.bucketMs).toBe(60_000);
    expect(tl.json.counts).toHaveLength(30);
    expect(tl.json.from % 60_000).toBe(0);
    const recent = tl.json.counts.at(-1) + tl.json.counts.at(-2);
    expect(recent).toBeGreaterThanOrEqual(3);
    expect((await t.call('GET', '/v1/timeline?minutes=100000')).status).toBe(400);
    expect((await t.call('GET', '/v1/timeline?minutes=abc')).status).toBe(400);
  });

  it('pushes the log head over Server-Sent Events when a decision is appended', async () => {
    const url = new URL('/v1/events', t.hub.url);
    const events: string[] = [];
    let wake: () => void = () => undefined;
    const req = request(url, { headers: { authorization: `Bearer ${viewer}` } });
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      req.on('response', resolve).on('error', reject).end();
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        events.push(buf.slice(0, i));
        buf = buf.slice(i + 2);
        wake();
      }
    });
    const nextHead = async (): Promise<number> => {
      for (;;) {
        const e = events.shift();
        if (e?.includes('event: head')) return JSON.parse(e.split('data: ')[1]!).head as number;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    };
    const first = await nextHead();
    const banned = await t.call('POST', '/v1/decisions', { target: '192.0.2.40' });
    expect(await nextHead()).toBe(banned.json.seq);
    expect(banned.json.seq).toBeGreaterThan(first);
    // An open stream must not hold the hub's shutdown.
    const ended = new Promise((resolve) => res.on('end', resolve));
    await t.hub.close();
    await ended;
  });
});

describe('dashboard sessions', () => {
  it('expire after their lifetime, end on logout, and are looked up by the cookie value only', () => {
    let now = 1_000_000;
    const sessions = new SessionStore(() => now);
    const { id, session } = sessions.create('viewer');
    expect(session.role).toBe('viewer');
    expect(sessions.get(id)).toBe(session);
    expect(sessions.get(`${id}x`)).toBeUndefined();
    expect(sessions.get('x'.repeat(200))).toBeUndefined();
    now += SESSION_TTL_MS - 1;
    expect(sessions.get(id)).toBe(session);
    now += 1;
    expect(sessions.get(id)).toBeUndefined();
    const second = sessions.create('admin');
    sessions.delete(second.id);
    expect(sessions.get(second.id)).toBeUndefined();
  });

  it('reads its cookie among others and writes it HttpOnly, SameSite=Strict, Secure over TLS', () => {
    expect(cookieValue('a=1; rampart_session=abc; b=2', 'rampart_session')).toBe('abc');
    expect(cookieValue('xrampart_session=abc', 'rampart_session')).toBeUndefined();
    expect(sessionCookie('abc', true)).toBe(
      'rampart_session=abc; Max-Age=43200; Path=/; HttpOnly; SameSite=Strict; Secure',
    );
    expect(sessionCookie(undefined, false)).toBe(
      'rampart_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict',
    );
  });
});

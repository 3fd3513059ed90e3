import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { buildApi } from '../../src/hub/api.js';
import { Authenticator } from '../../src/hub/auth.js';
import { SessionStore } from '../../src/hub/dashboard/sessions.js';
import { seal } from '../../src/trust/envelope.js';
import type { KeyPair } from '../../src/trust/keys.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';
import { docAddress, family, mutated, textFrom, timeout } from './harness.js';

// Every route of a real hub, bodies and queries generated from the route schemas (src/hub/
// schemas.ts and the routes) plus hostile ones. Requests go through fastify's inject into an API
// built over the running hub's own core and store (the socket is the only part left out), and a
// slice over real HTTP. Never a 5xx; a 4xx never changes state; error bodies stay small.
// The one family far below 100,000 inputs in CI: a request costs 3-7 ms on the 2-core CI box (the
// whole API stack, a store snapshot on each side, a log that grows with every accepted ban), so
// CI runs 7,000 and `npm run fuzz` ten times that (docs/testing.md).
const f = family('hub-http');

let t: TestHub;
let app: FastifyInstance;
let node: { keys: KeyPair; token: string };
const NODE = 'fuzz-node';

beforeAll(async () => {
  t = await startTestHub();
  node = await t.enrol(NODE);
  app = buildApi({
    core: t.hub.core,
    auth: new Authenticator(t.hub.adminToken, t.hub.store),
    publicUrl: () => t.hub.publicUrl,
    hubPublicKey: t.hub.publicKey,
    hubPublicKeyText: t.hub.publicKeyText,
    bus: () => t.hub.busInfo,
    joinTtlMs: 86_400_000,
    log: silentLogger(),
    sessions: new SessionStore(t.hub.core.now),
  });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await t?.close();
});

/** What a refused request must leave alone: the decision log, nodes, allowlist, bouncers. */
async function snapshot(): Promise<string> {
  const s = t.hub.store;
  return JSON.stringify([
    await s.head(),
    (await s.listNodes()).map((n) => [n.name, n.publicKey, n.tokenHash, n.joinSecretHash, n.removedAt]),
    (await s.allowList()).map((a) => a.cidr),
    (await s.listBouncers()).map((b) => b.name),
  ]);
}

interface Req {
  method: 'GET' | 'POST' | 'DELETE' | 'PUT';
  url: string;
  body?: string;
  auth: 'admin' | 'node' | 'none' | 'junk';
  type?: string;
}

const junk = fc.oneof(fc.jsonValue({ maxDepth: 1 }), fc.string({ maxLength: 30 }));
const target = fc.oneof(
  { weight: 4, arbitrary: docAddress },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '127.0.0.1',
      '0.0.0.0/0',
      '::1',
      '192.0.2.0/24',
      '2001:db8::/32',
      '10.0.0.0/8',
    ),
  },
  { weight: 1, arbitrary: textFrom('0123456789abcdef:./%', 70) },
);
const duration = fc.oneof(
  fc.constantFrom('10m', '1h', 'permanent', '1x', '', '99999999999999999999'),
  fc.integer({ min: -2, max: 2_000_000_000 }),
  fc.double(),
);
const setName = fc.oneof(fc.constantFrom('blocklist', 'web', 'a b', '-x'), fc.string({ maxLength: 70 }));
const banBody = fc.record(
  { target, duration, reason: fc.string({ maxLength: 300 }), set: setName, force: fc.boolean(), extra: junk },
  { requiredKeys: [] },
);
const name = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), fc.string({ maxLength: 70 }));
const q = (o: Record<string, unknown>) =>
  new URLSearchParams(
    Object.entries(o)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]): [string, string] => [k, String(v)]),
  ).toString();
const queryVal = fc.oneof(
  fc.integer({ min: -5, max: 20_000 }).map(String),
  fc.string({ maxLength: 50 }),
  docAddress,
);
const auth = fc.constantFrom<Req['auth']>('admin', 'admin', 'admin', 'node', 'none', 'junk');

const json = (b: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: b.map((x) => JSON.stringify(x)) },
    {
      weight: 1,
      arbitrary: mutated(b.map((x) => Buffer.from(JSON.stringify(x) ?? ''))).map((x) => x.toString('latin1')),
    },
  );

const request: fc.Arbitrary<Req> = fc.oneof(
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/decisions'),
    body: json(banBody),
    auth,
  }),
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/decisions/bulk'),
    body: json(
      fc.oneof(
        fc.record({ decisions: fc.array(fc.oneof(banBody, junk), { maxLength: 6 }) }),
        fc.record({ decisions: junk, extra: junk }, { requiredKeys: [] }),
      ),
    ),
    auth,
  }),
  fc.record({
    method: fc.constant('DELETE' as const),
    url: fc
      .tuple(target, fc.option(setName))
      .map(([tg, s]) => `/v1/decisions/${encodeURIComponent(tg)}${s === null ? '' : `?${q({ set: s })}`}`),
    auth,
  }),
  fc.record({
    method: fc.constant('GET' as const),
    url: fc
      .record({ since: queryVal, limit: queryVal, ip: target, range: target }, { requiredKeys: [] })
      .map((o) => `/v1/decisions?${q(o)}`),
    auth,
  }),
  fc.record({
    method: fc.constant('GET' as const),
    url: fc
      .record(
        {
          limit: queryVal,
          cursor: queryVal,
          target,
          origin: queryVal,
          rule: queryVal,
          set: setName,
          since: queryVal,
        },
        { requiredKeys: [] },
      )
      .map((o) => `/v1/bans?${q(o)}`),
    auth,
  }),
  fc.record({
    method: fc.constant('GET' as const),
    url: fc.constantFrom(
      '/v1/decisions/active',
      '/v1/blocklist',
      '/v1/health',
      '/v1/status',
      '/v1/nodes',
      '/v1/allowlist',
      '/v1/bouncers',
      '/metrics',
      '/v1/nope',
    ),
    auth,
  }),
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/allowlist'),
    body: json(
      fc.record(
        { cidr: target, comment: fc.string({ maxLength: 300 }), force: fc.boolean(), x: junk },
        { requiredKeys: [] },
      ),
    ),
    auth,
  }),
  fc.record({
    method: fc.constant('DELETE' as const),
    url: target.map((c) => `/v1/allowlist?${q({ cidr: c })}`),
    auth,
  }),
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/nodes'),
    body: json(fc.record({ name }, { requiredKeys: [] })),
    auth,
  }),
  fc.record({
    method: fc.constant('DELETE' as const),
    url: name.map((n) => `/v1/nodes/${encodeURIComponent(n)}`),
    auth,
  }),
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/bouncers'),
    body: json(fc.record({ name }, { requiredKeys: [] })),
    auth,
  }),
  fc.record({
    method: fc.constant('DELETE' as const),
    url: name.map((n) => `/v1/bouncers/${encodeURIComponent(n)}`),
    auth,
  }),
  fc.record({
    method: fc.constant('POST' as const),
    url: fc.constant('/v1/join'),
    body: json(
      fc.record(
        {
          token: fc.oneof(fc.constant('rpj1.'), fc.string({ maxLength: 80 })),
          name,
          publicKey: fc.base64String({ maxLength: 60 }),
        },
        { requiredKeys: [] },
      ),
    ),
    auth,
  }),
  fc.record({
    method: fc.constantFrom('PUT' as const, 'POST' as const),
    url: fc.constantFrom('/v1/decisions/active', '/v1/health', '/v1/decisions/bulk'),
    body: fc.string({ maxLength: 40 }),
    auth,
    type: fc.constantFrom('text/plain', 'application/json', 'application/x-www-form-urlencoded'),
  }),
);

/** Checks one answer against the rules, given the state before it. */
async function judge(status: number, body: string, before: string, what: string): Promise<void> {
  if (status >= 500) throw new Error(`${what}: ${status} ${body.slice(0, 300)}`);
  if (status >= 400) {
    expect(await snapshot(), `${what}: a ${status} changed state`).toBe(before);
    expect(body.length, `${what}: error body of ${body.length} bytes`).toBeLessThanOrEqual(2048);
  }
}

function headers(r: Req): Record<string, string> {
  const token = { admin: t.hub.adminToken, node: node.token, none: undefined, junk: 'x'.repeat(40) }[r.auth];
  return {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(r.body !== undefined ? { 'content-type': r.type ?? 'application/json' } : {}),
  };
}

describe('fuzz: hub HTTP API', () => {
  it(
    'every route: never a 5xx, never a state change on a 4xx, small error bodies',
    async () => {
      await f.propAsync(
        'routes-inject',
        request,
        async (r) => {
          const before = await snapshot();
          const res = await app.inject({
            method: r.method,
            url: r.url,
            headers: headers(r),
            payload: r.body,
          });
          await judge(res.statusCode, res.body, before, `${r.method} ${r.url}`);
        },
        { runs: 5_000 },
      );
    },
    timeout(45),
  );

  it(
    'reports over HTTP: sealed, mutated or forged envelopes with any body',
    async () => {
      const body = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record(
          {
            target,
            rule: fc.string({ maxLength: 300 }),
            reason: fc.string({ maxLength: 300 }),
            hits: fc.oneof(fc.integer(), fc.double()),
            duration: fc.oneof(fc.double(), fc.constant(null), fc.integer({ min: 1, max: 1e9 })),
            at: fc.integer(),
            set: setName,
            lastSeq: fc.integer(),
            version: fc.string({ maxLength: 100 }),
          },
          { requiredKeys: [] },
        ),
      );
      const envelope = fc
        .tuple(fc.constantFrom('report', 'heartbeat', 'decision'), body, fc.constantFrom(NODE, 'other-node'))
        .map(([k, b, from]) => seal(k, b, from, node.keys.privateKey));
      await f.propAsync(
        'reports',
        fc.tuple(fc.oneof(envelope, mutated(envelope)), auth),
        async ([env, a]) => {
          const r: Req = { method: 'POST', url: '/v1/reports', body: env.toString('latin1'), auth: a };
          const before = await snapshot();
          const res = await app.inject({
            method: r.method,
            url: r.url,
            headers: headers(r),
            payload: r.body,
          });
          await judge(res.statusCode, res.body, before, `report ${r.body}`);
        },
        { runs: 1_000 },
      );
    },
    timeout(20),
  );

  it(
    'the same over real HTTP (raw bytes on the socket)',
    async () => {
      await f.propAsync(
        'routes-http',
        request,
        async (r) => {
          const before = await snapshot();
          const res = await fetch(new URL(r.url, t.hub.url), {
            method: r.method,
            headers: headers(r),
            body: r.body,
          });
          await judge(res.status, await res.text(), before, `${r.method} ${r.url}`);
        },
        { runs: 1_000 },
      );
    },
    timeout(20),
  );
});

import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import type { Access } from '../../src/hub/api.js';
import { docAddress, mutated, textFrom } from './harness.js';
import { type Hints, invalid, queryPairs, type Schema, valid } from './schema-arbitrary.js';

/**
 * The hub's routes as fastify registers them (method, URL, access, schemas), and requests to
 * them generated from those schemas: `valid` (the schema accepts it; the hub may still refuse
 * it), `invalid` (one definite schema violation: an authorised caller must get a coded 400) and
 * `hostile` (bytes no client would send: mutated JSON, wrong media types, junk queries).
 */

export interface Route {
  method: string;
  url: string;
  access: Access;
  /** Also answers a CrowdSec bouncer's X-Api-Key. */
  bouncer: boolean;
  body?: Schema;
  querystring?: Schema;
  params?: Schema;
}

export type Auth = 'admin' | 'node' | 'bouncer' | 'none' | 'junk';

export interface Req {
  method: string;
  url: string;
  body?: string;
  type?: string;
  auth: Auth;
  mode: 'valid' | 'invalid' | 'hostile';
  route: Route;
  /** Bulk only: items in the body, and the indexes the schema refuses (each must come back as an error). */
  items?: number;
  badItems?: number[];
  /** The URL's path was bent off the route's (hostile): its access rule no longer applies. */
  offRoute?: boolean;
}

/**
 * Registers a hook on a built (not yet ready) app that lists its routes as they are added.
 * `/v1/events` is left out: a server-sent stream that stays open until the client leaves.
 */
export function collectRoutes(app: FastifyInstance): Route[] {
  const routes: Route[] = [];
  app.addHook('onRoute', (r) => {
    if (r.url === '/v1/events') return;
    const s = (r.schema ?? {}) as { body?: Schema; querystring?: Schema; params?: Schema };
    const config = (r.config ?? {}) as { access?: Access; bouncer?: boolean };
    for (const method of [r.method].flat()) {
      routes.push({
        method,
        url: r.url,
        access: config.access ?? 'admin',
        bouncer: config.bouncer === true,
        ...(s.body ? { body: s.body } : {}),
        ...(s.querystring ? { querystring: s.querystring } : {}),
        ...(s.params ? { params: s.params } : {}),
      });
    }
  });
  return routes;
}

/** Small pools: names, addresses and sets recur, so bans, unbans, removals and re-adds meet. */
const names = fc.constantFrom('p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7');
const target = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 60 }).map((h) => `192.0.2.${h}`) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 30 }).map((h) => `2001:db8::${h.toString(16)}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('198.51.100.0/24', '203.0.113.0/28', '2001:db8:1::/48', '::ffff:192.0.2.9'),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('127.0.0.1', '0.0.0.0/0', '::1', '10.0.0.0/8', '192.0.2.01', 'fe80::1%eth0'),
  },
  { weight: 1, arbitrary: docAddress },
  { weight: 1, arbitrary: textFrom('0123456789abcdef:./%', 63).filter((x) => x.length > 0) },
);

/** The hub's values by property name (schemas.ts and the routes); see `Hints`. */
export function hubHints(secrets: { adminToken: string; bouncerKey: string }): Hints {
  return {
    target,
    ip: target,
    range: target,
    // A few allowlist entries only: an allowlisted range refuses every ban inside it, so the
    // whole target pool allowlisted would leave nothing for the ban routes to accept.
    cidr: fc.oneof(
      fc.constantFrom('192.0.2.60', '203.0.113.0/28', '2001:db8::1e', '10.0.0.0/8'),
      textFrom('0123456789abcdef:./%', 63).filter((x) => x.length > 0),
    ),
    set: fc.constantFrom('blocklist', 'web', 'ssh', '', 'a b', '-x', '1x'),
    duration: fc.oneof(
      fc.constantFrom('10m', '1h', '90s', '1d', 'permanent', '1x', '', '99999999999999999999'),
      fc.integer({ min: -2, max: 10_000_000 }),
    ),
    reason: fc.string({ maxLength: 30 }),
    comment: fc.string({ maxLength: 30 }),
    name: names,
    limit: fc.integer({ min: 1, max: 50 }),
    token: fc.oneof(
      fc.constant(secrets.adminToken),
      fc.string({ minLength: 1, maxLength: 60 }),
      fc.string({ maxLength: 40 }).map((s) => `rpj1.${s}`),
    ),
    key: fc.oneof(fc.constant(secrets.bouncerKey), fc.string({ maxLength: 40 })),
    publicKey: fc.base64String({ maxLength: 60 }),
  };
}

const auth = fc.constantFrom<Auth>('admin', 'admin', 'admin', 'admin', 'node', 'bouncer', 'none', 'junk');
const junkJson = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 30 }));

/** The URL of `route` with its params filled and its query appended. */
function url(route: Route, params: Record<string, unknown>, query: Array<[string, string]>): string {
  const path = route.url.replace(/:(\w+)/g, (_m, p: string) => encodeURIComponent(String(params[p])));
  return query.length ? `${path}?${new URLSearchParams(query).toString()}` : path;
}

/** Requests for one route in each mode the schemas allow. */
const one = (arbitrary: fc.Arbitrary<Req>): fc.WeightedArbitrary<Req> => ({ weight: 1, arbitrary });

function routeRequests(route: Route, hints: Hints, bulkItem: Schema): fc.WeightedArbitrary<Req>[] {
  const qs: Schema = route.querystring ?? { type: 'object', properties: {} };
  const ps: Schema = route.params ?? { type: 'object', properties: {} };
  const validParams = valid({ ...ps, required: Object.keys(ps.properties ?? {}) }, hints) as fc.Arbitrary<
    Record<string, unknown>
  >;
  const validQuery = queryPairs(qs, hints, 'valid');
  const isBulk = route.url === '/v1/decisions/bulk';
  const hasBody = route.method === 'POST' || route.method === 'PUT' || route.body !== undefined;
  const validBody: fc.Arbitrary<string | undefined> = !hasBody
    ? fc.constant(undefined)
    : route.body
      ? valid(route.body, hints).map((b) => JSON.stringify(b))
      : junkJson.map((b) => JSON.stringify(b));
  const base = { method: fc.constant(route.method), route: fc.constant(route), auth };
  /** A request from its parts; `mode` says which rule the parts were drawn by. */
  const assemble = (
    mode: 'valid' | 'invalid',
    parts: {
      params: fc.Arbitrary<Record<string, unknown>>;
      query: fc.Arbitrary<Array<[string, string]>>;
      body: fc.Arbitrary<string | undefined>;
    },
  ): fc.Arbitrary<Req> =>
    fc.record({ ...base, ...parts }).map(({ params, query, body, ...r }) => ({
      ...r,
      url: url(route, params, query),
      mode,
      ...(body === undefined ? {} : { body }),
    }));
  // Valid requests weigh three times one kind of violation: they are the ones that reach the core.
  const out: fc.WeightedArbitrary<Req>[] = [
    {
      weight: 3,
      arbitrary: isBulk
        ? bulkRequest(route, hints, bulkItem)
        : assemble('valid', { params: validParams, query: validQuery, body: validBody }),
    },
  ];

  // One violation, in the params, the query or the body; the other parts stay valid.
  // A path parameter is text too; an empty one would route elsewhere, so it is left out.
  const badParams = Object.entries(ps.properties ?? {}).flatMap(([key, p]) => {
    const bad = invalid(p, hints, true)?.filter((v) => String(v).length > 0);
    return bad ? [fc.tuple(validParams, bad).map(([o, v]) => ({ ...o, [key]: v }))] : [];
  });
  if (badParams.length) {
    out.push(
      one(assemble('invalid', { params: fc.oneof(...badParams), query: validQuery, body: validBody })),
    );
  }
  if (Object.keys(qs.properties ?? {}).length || qs.required) {
    out.push(
      one(
        assemble('invalid', {
          params: validParams,
          query: queryPairs(qs, hints, 'invalid'),
          body: validBody,
        }),
      ),
    );
  }
  const badBody = route.body ? invalid(route.body, hints) : undefined;
  if (badBody) {
    out.push(
      one(
        assemble('invalid', {
          params: validParams,
          query: validQuery,
          body: badBody.map((b) => JSON.stringify(b)),
        }),
      ),
    );
  }

  // Hostile: near-miss JSON bytes, text under any media type, a query of junk keys and escapes.
  out.push(
    one(
      fc
        .record({
          ...base,
          params: validParams,
          query: fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 20 })), {
            maxLength: 3,
          }),
          body: fc.oneof(
            mutated(validBody.map((b) => Buffer.from(b ?? '{}'))).map((b) => b.toString('latin1')),
            fc.string({ maxLength: 60 }),
          ),
          type: fc.constantFrom(
            'application/json',
            'text/plain',
            'application/x-www-form-urlencoded',
            'application/json; charset=latin1',
          ),
          // Query tails keep the route; path tails leave it (a bad escape is refused before routing).
          tail: fc.constantFrom('', '', '&%', '&%zz', '&a[b]=1&a[c]=2', '&=&&=x', '/', '//x', '%', '%c0%af'),
        })
        .map(({ params, query, tail, ...r }) => {
          const u = url(route, params, query);
          if (tail.startsWith('&'))
            return { ...r, url: u + (u.includes('?') ? tail : `?${tail}`), mode: 'hostile' as const };
          const path = u.split('?')[0]!;
          return {
            ...r,
            url: `${path}${tail}${u.slice(path.length)}`,
            mode: 'hostile' as const,
            offRoute: tail !== '',
          };
        }),
    ),
  );
  return out;
}

/**
 * The bulk endpoint: items from the single ban's schema (routes/bulk.ts checks the same fields
 * and limits by hand, so that an error names the item), some refused by it, some junk.
 */
function bulkRequest(route: Route, hints: Hints, itemSchema: Schema): fc.Arbitrary<Req> {
  const item = fc.oneof(
    { weight: 4, arbitrary: valid(itemSchema, hints).map((v) => ({ v, bad: false })) },
    { weight: 1, arbitrary: invalid(itemSchema, hints)!.map((v) => ({ v, bad: true })) },
    { weight: 1, arbitrary: fc.constantFrom(null, 7, 'text', []).map((v) => ({ v, bad: true })) },
  );
  return fc
    .record({
      items: fc.array(item, { maxLength: 8 }),
      replace: fc.option(fc.boolean(), { nil: undefined }),
      auth,
    })
    .map(({ items, replace, auth: a }) => ({
      method: 'POST',
      url: route.url,
      route,
      auth: a,
      mode: 'valid' as const,
      body: JSON.stringify({
        decisions: items.map((i) => i.v),
        ...(replace === undefined ? {} : { replace }),
      }),
      items: items.length,
      badItems: items.flatMap((i, index) => (i.bad ? [index] : [])),
    }));
}

/** Every request the fuzzer makes, over every route but the event stream. */
export function requests(routes: Route[], hints: Hints): fc.Arbitrary<Req> {
  const single = routes.find((r) => r.method === 'POST' && r.url === '/v1/decisions');
  if (!single?.body)
    throw new Error('POST /v1/decisions has no body schema: the bulk items cannot be generated');
  const unrouted: Route = { method: 'GET', url: '/v1/nope', access: 'admin', bouncer: false };
  const all = [...routes, unrouted, { ...unrouted, method: 'PUT', url: '/v1/decisions/active' }];
  // Changes weigh most (they reach the core and the store), automatic HEADs least.
  const weight = (r: Route) => (r.method === 'HEAD' ? 1 : r.method === 'GET' ? 2 : 4);
  return fc.oneof(
    ...all.map((r) => ({ weight: weight(r), arbitrary: fc.oneof(...routeRequests(r, hints, single.body!)) })),
  );
}

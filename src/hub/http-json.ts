import { createHash } from 'node:crypto';

/** One answer from the hub API: the status and the body, parsed when it is JSON. */
export interface JsonAnswer {
  status: number;
  ok: boolean;
  /** undefined when the body is not JSON (an empty body counts as `{}`). */
  json: unknown;
  text: string;
}

/** Why a request got no answer at all (connection refused, timeout, DNS), as short text. */
export class Unreachable extends Error {
  constructor(
    readonly reason: string,
    readonly original: unknown,
  ) {
    super(reason);
  }
}

/** The hub URLs in `baseUrl`: one, or several separated by commas (hubs sharing one store). */
export function hubUrls(baseUrl: string): string[] {
  return baseUrl
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
}

/** Per list of hubs (and spread key), the one that answered last: requests stick to it until it fails. */
const lastGood = new Map<string, number>();

/**
 * The hub a client with this key tries first: stable per key, spread evenly over the list. Agents
 * pass their node name, so a fleet's reports (sent over HTTP first) are shared by the hubs instead
 * of all going to the first URL of everyone's list.
 */
export function firstHubFor(key: string, hubs: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % hubs;
}

/**
 * The one HTTP exchange both hub clients (the agent's and the operator CLI's) make: bearer token,
 * JSON body, a timeout. Callers turn the answer into their own errors: the CLI into exit codes,
 * the agent into retry-or-refusal decisions that need the status. With several hub URLs, a hub
 * that does not answer at all is skipped for the next (any answer, even an error, is final).
 */
export async function requestJson(
  baseUrl: string,
  method: string,
  path: string,
  opts: {
    token?: string;
    body?: string | Buffer;
    timeoutMs: number;
    signal?: AbortSignal;
    /** With several hubs, picks the first one tried ({@link firstHubFor}); default the first URL. */
    spread?: string;
  },
): Promise<JsonAnswer> {
  const urls = hubUrls(baseUrl);
  if (urls.length <= 1) return requestOne(baseUrl, method, path, opts);
  const listKey = opts.spread === undefined ? baseUrl : `${opts.spread}\n${baseUrl}`;
  const start =
    lastGood.get(listKey) ?? (opts.spread === undefined ? 0 : firstHubFor(opts.spread, urls.length));
  let last: Unreachable | undefined;
  for (let i = 0; i < urls.length; i++) {
    const k = (start + i) % urls.length;
    try {
      const answer = await requestOne(urls[k]!, method, path, opts);
      lastGood.set(listKey, k);
      return answer;
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      last = new Unreachable(`${urls[k]}: ${err.reason}`, err.original);
    }
  }
  throw last!;
}

async function requestOne(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string | Buffer; timeoutMs: number; signal?: AbortSignal },
): Promise<JsonAnswer> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path, baseUrl), {
      method,
      headers,
      body: opts.body,
      signal: opts.signal
        ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)])
        : AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    const c = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } })
      .cause;
    throw new Unreachable(c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (err as Error).message, err);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = undefined;
  }
  return { status: res.status, ok: res.ok, json, text };
}

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

/**
 * One request over node:http (node:https for an https URL), not `fetch`: fetch loads undici, a
 * second HTTP stack with its HTTP/2, TLS and zlib modules and a WebAssembly parser, which an idle
 * agent kept for its few calls to the hub (≈ 5-6 MB of its RSS, ADR 0047). Errors read as fetch's
 * did: the system error code before any answer, the timeout's or the caller's abort message.
 */
async function requestOne(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: string | Buffer; timeoutMs: number; signal?: AbortSignal },
): Promise<JsonAnswer> {
  const url = new URL(path, baseUrl);
  const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  const { signal, settled } = requestSignal(opts.timeoutMs, opts.signal);
  const headers: Record<string, string | number> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(opts.body);
  }
  const answer = new Promise<JsonAnswer>((resolve, reject) => {
    let answered = false;
    const req = request(url, { method, headers, signal }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : {};
        } catch {
          json = undefined;
        }
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, json, text });
      });
      // Cut off mid-body (the timeout, the caller's abort, the hub gone): not an answer.
      res.on('close', () => {
        if (!res.complete) reject(signal.aborted ? signal.reason : new Error('the answer was cut off'));
      });
    });
    req.on('error', (err: Error & { code?: string; errors?: Array<{ code?: string }> }) => {
      if (answered) return;
      if (signal.aborted) {
        const why = signal.reason as Error;
        reject(new Unreachable(why.message, why));
      } else reject(new Unreachable(err.code ?? err.errors?.[0]?.code ?? err.message, err));
    });
    req.end(opts.body);
  });
  return answer.finally(settled);
}

/**
 * The request's abort signal: the timeout, or the caller's signal, whichever comes first. Not
 * `AbortSignal.any([caller, AbortSignal.timeout()])`: Node 20 holds the timeout signal only
 * weakly from there, and a garbage collection during the wait collected it, so its timer never
 * fired. A request to a frozen hub then hung for good, and with it the agent's catch-up and every
 * decision behind it (seen in the scale-out fault tests). Here the timer is ours, cleared once
 * the request has settled, and so is the listener on the caller's signal.
 */
function requestSignal(
  timeoutMs: number,
  caller: AbortSignal | undefined,
): { signal: AbortSignal; settled: () => void } {
  const ctl = new AbortController();
  const timer = setTimeout(
    () => ctl.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  const onAbort = () => ctl.abort(caller?.reason);
  if (caller?.aborted) onAbort();
  else caller?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    settled: () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    },
  };
}

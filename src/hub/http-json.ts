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

/**
 * The one HTTP exchange both hub clients (the agent's and the operator CLI's) make: bearer token,
 * JSON body, a timeout. Callers turn the answer into their own errors: the CLI into exit codes,
 * the agent into retry-or-refusal decisions that need the status.
 */
export async function requestJson(
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

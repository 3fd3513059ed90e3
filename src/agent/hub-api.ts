import type { Decision } from '../core/decision.js';
import { RampartError } from '../core/errors.js';
import { unpackDecisions } from '../core/packed-decisions.js';
import { type JsonAnswer, requestJson, Unreachable } from '../hub/http-json.js';
import { checkDecision } from './decision-check.js';

/** `GET /v1/decisions?since=SEQ` answer: a page of the log, or a snapshot when SEQ is too old. */
export interface DecisionPage {
  head: number;
  snapshot?: boolean;
  decisions: Decision[];
}

export interface JoinAnswer {
  nodeToken: string;
  hubPublicKey: string;
  fleet: string;
  bus: { type: string; url: string };
}

/** An HTTP error answer from the hub; `status` tells a refusal (4xx) from an outage. */
export class HubHttpError extends RampartError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

/** The agent's side of the hub HTTP API (bearer = its node token). */
export class HubApi {
  // Aborted at shutdown: a hub that is gone must not hold SIGTERM up for the request timeout.
  private readonly aborter = new AbortController();

  /**
   * `spread` (the node name): with several hub URLs, which hub this agent tries first, so a
   * fleet's agents share the hubs (http-json.ts firstHubFor); it still fails over to the others.
   */
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
    private readonly spread?: string,
  ) {}

  /** Aborts every request in flight and any later one (the agent is stopping). */
  abort(): void {
    this.aborter.abort();
  }

  /**
   * A page of the log after `since`, asked for packed (a hub that predates the format answers
   * with plain decisions, which read the same). Every decision is checked as one from the bus is:
   * a page that is not a valid run, or holds a bad decision, is refused whole (E_HTTP) and the
   * catch-up retries, rather than skipping a seq that the next page would skip again.
   */
  async decisions(since: number, limit = 10_000): Promise<DecisionPage> {
    const path = `/v1/decisions?since=${since}&limit=${limit}&format=packed`;
    const answer = await this.call<Record<string, unknown>>('GET', path);
    return readPage(answer, `${this.url} GET /v1/decisions?since=${since}`);
  }

  /** Delivers a sealed report envelope over HTTP (the outbox's path when the bus is down). */
  report(
    envelope: Buffer,
  ): Promise<{ result?: string; reason?: string; refusal?: string; decision?: Decision }> {
    return this.call('POST', '/v1/reports', envelope);
  }

  health(): Promise<{ ok: boolean; head: number }> {
    return this.call('GET', '/v1/health');
  }

  /** `POST /v1/join`: no bearer, the token's one-time secret authenticates. */
  static async join(
    url: string,
    body: { token: string; name: string; publicKey: string },
  ): Promise<JoinAnswer> {
    return new HubApi(url, '').call<JoinAnswer>('POST', '/v1/join', Buffer.from(JSON.stringify(body)));
  }

  private async call<T>(method: string, path: string, body?: Buffer): Promise<T> {
    let answer: JsonAnswer;
    try {
      answer = await requestJson(this.url, method, path, {
        token: this.token,
        body,
        timeoutMs: this.timeoutMs,
        signal: this.aborter.signal,
        ...(this.spread !== undefined ? { spread: this.spread } : {}),
      });
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      throw new RampartError('E_HTTP', `hub ${this.url} unreachable (${method} ${path}): ${err.reason}`, {
        cause: err.original,
      });
    }
    const { json, text, status } = answer;
    if (!answer.ok) {
      const msg = (json as { error?: string } | undefined)?.error ?? text.slice(0, 200);
      const code = status === 401 || status === 403 ? 'E_AUTH' : 'E_HTTP';
      throw new HubHttpError(code, `hub ${method} ${path}: HTTP ${status}: ${msg}`, status);
    }
    if (json === undefined) throw new RampartError('E_HTTP', `hub ${method} ${path}: answer is not JSON`);
    return json as T;
  }
}

/** A `GET /v1/decisions` answer as a checked page (see {@link HubApi.decisions}). */
export function readPage(answer: Record<string, unknown>, where: string): DecisionPage {
  const bad = (why: string) => new RampartError('E_HTTP', `hub ${where}: ${why}`);
  const head = answer.head;
  if (!Number.isSafeInteger(head) || (head as number) < 0) throw bad('no valid head');
  let bodies: unknown[] | undefined;
  if (answer.packed !== undefined) {
    bodies = unpackDecisions(answer.packed);
    if (!bodies) throw bad('packed page is not a valid run');
  } else if (Array.isArray(answer.decisions)) bodies = answer.decisions;
  else throw bad('neither decisions nor a packed run');
  const decisions = new Array<Decision>(bodies.length);
  for (let i = 0; i < bodies.length; i++) {
    const d = checkDecision(bodies[i]);
    if (!d) throw bad(`decision ${i + 1} of ${bodies.length} is invalid`);
    decisions[i] = d;
  }
  return { head: head as number, ...(answer.snapshot === true ? { snapshot: true } : {}), decisions };
}

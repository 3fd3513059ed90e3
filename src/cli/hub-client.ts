import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { RampartError } from '../core/errors.js';
import { defaultDataDir } from '../core/paths.js';
import { hubUrls, type JsonAnswer, requestJson, Unreachable } from '../hub/http-json.js';

/** Options every operator command takes to find the hub. */
export interface HubFlags {
  hub?: string;
  token?: string;
  data?: string;
}

/** Adds `--hub`, `--token` and `--data` to an operator command. */
export function hubOptions(cmd: Command): Command {
  return cmd
    .option(
      '--hub <url>',
      'hub API URL, or several comma-separated (default: $RAMPART_HUB, else DATA/hub/hub.json on the hub machine)',
    )
    .option('--token <token>', 'admin token (default: $RAMPART_TOKEN, else DATA/hub/admin.token)')
    .option('--data <dir>', 'data folder where a local hub keeps hub.json and admin.token');
}

/**
 * Finds the hub and the credential: flags, then environment, then the local hub's data folder
 * (`hub.json` and `admin.token`), so on the hub's machine no flags are needed.
 */
export function resolveHub(flags: HubFlags): { url: string; token: string } {
  const dir = join(flags.data ?? defaultDataDir(), 'hub');
  let url = flags.hub ?? process.env.RAMPART_HUB;
  let token = flags.token ?? process.env.RAMPART_TOKEN;
  const infoFile = join(dir, 'hub.json');
  if (!url && existsSync(infoFile)) {
    try {
      url = (JSON.parse(readFileSync(infoFile, 'utf8')) as { url?: string }).url;
    } catch (err) {
      throw new RampartError('E_CONFIG', `${infoFile} is not valid JSON; restart the hub to rewrite it`, {
        cause: err,
      });
    }
  }
  if (!url) {
    throw new RampartError(
      'E_USAGE',
      `no hub found: pass --hub URL --token T (or set RAMPART_HUB and RAMPART_TOKEN), or run this on the hub machine (looked for ${infoFile})`,
    );
  }
  const tokenFile = join(dir, 'admin.token');
  if (!token && existsSync(tokenFile)) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new RampartError('E_AUTH', `cannot read ${tokenFile} (run as the hub's user, or pass --token)`, {
        cause: err,
      });
    }
  }
  if (!token)
    throw new RampartError(
      'E_USAGE',
      `no admin token: pass --token T or set RAMPART_TOKEN (looked for ${tokenFile})`,
    );
  // Several hubs on one store: a comma-separated list, tried in turn (http-json.ts).
  for (const u of hubUrls(url)) {
    if (!URL.canParse(u))
      throw new RampartError('E_USAGE', `--hub: "${u}" is not a URL (e.g. http://hub.example:7780)`);
  }
  return { url, token };
}

// Error codes that mean "your input was wrong", which exit.ts maps to exit code 2.
const INPUT_CODES = new Set([
  'E_USAGE',
  'E_ADDRESS',
  'E_DURATION',
  'E_UNBANNABLE',
  'E_SET_NAME',
  'E_PROTECTED',
]);

/** A small JSON client for the hub API; every failure is one RampartError line. */
export class HubClient {
  constructor(
    readonly url: string,
    private readonly token: string,
    private readonly timeoutMs = 10_000,
  ) {}

  static from(flags: HubFlags): HubClient {
    const { url, token } = resolveHub(flags);
    return new HubClient(url, token);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  delete<T>(path: string, body?: unknown): Promise<T> {
    return this.call<T>('DELETE', path, body);
  }

  /** POST whose answer is also data when its status is one of `accept` (a bulk call that failed whole). */
  postAccepting<T>(path: string, body: unknown, accept: number[]): Promise<T> {
    return this.call<T>('POST', path, body, accept);
  }

  async call<T>(method: string, path: string, body?: unknown, accept: number[] = []): Promise<T> {
    let answer: JsonAnswer;
    try {
      answer = await requestJson(this.url, method, path, {
        token: this.token,
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      throw new RampartError(
        'E_HTTP',
        `cannot reach the hub at ${this.url} (${err.reason}); is "rampart hub" running?`,
        {
          cause: err.original,
        },
      );
    }
    const { json, status } = answer;
    if (!answer.ok && !(accept.includes(status) && json !== undefined)) {
      const e = (json ?? {}) as { error?: string; code?: string };
      const message = e.error ?? `HTTP ${status}`;
      if (status === 401 || status === 403) {
        throw new RampartError('E_AUTH', `the hub refused the token: ${message}`);
      }
      const code = e.code && INPUT_CODES.has(e.code) ? e.code : status === 400 ? 'E_USAGE' : 'E_HTTP';
      throw new RampartError(code, message);
    }
    if (json === undefined)
      throw new RampartError('E_HTTP', `the hub's answer to ${method} ${path} is not JSON`);
    return json as T;
  }
}

/** Aligned columns for humans; cells are clipped and stripped of control bytes (reasons can hold attacker text). */
export function formatTable(header: string[], rows: string[][]): string {
  const clean = (s: string) => {
    const p = s.replace(/[^\x20-\x7e]/g, '?');
    return p.length > 60 ? `${p.slice(0, 59)}…` : p;
  };
  const all = [header, ...rows.map((r) => r.map(clean))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return `${all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')}\n`;
}

/** "3h12m", "permanent" or "expired" for a ban's remaining time. */
export function remaining(expiresAt: number | null, now = Date.now()): string {
  if (expiresAt === null) return 'permanent';
  let s = Math.max(0, Math.ceil((expiresAt - now) / 1000));
  if (s === 0) return 'expired';
  const parts: string[] = [];
  for (const [u, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (s >= n && parts.length < 2) {
      parts.push(`${Math.floor(s / n)}${u}`);
      s %= n;
    }
  }
  return parts.join('');
}

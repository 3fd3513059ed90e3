import { connect } from 'node:net';
import { fsReason } from '../../core/fs-error.js';
import { hubUrls } from '../../hub/http-json.js';
import { DEFAULT_WINDOW_MS } from '../../trust/envelope.js';
import { type CheckResult, fail, ok, warn } from './check.js';

/** Above this, logs and ban times disagree visibly; above half the envelope window, messages drop. */
const SKEW_WARN_MS = 2_000;
const SKEW_FAIL_MS = DEFAULT_WINDOW_MS / 2;

/**
 * Asks each hub for `/v1/health` (no credential needed): reachability, and the clock through the
 * answer's Date header, measured against the middle of the round trip. Signed envelopes older than
 * the window are dropped, so a skewed clock silently loses reports.
 */
export async function checkHub(hub: string, timeoutMs = 5_000): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const url of hubUrls(hub)) {
    const sent = Date.now();
    let res: Response;
    try {
      res = await fetch(new URL('/v1/health', url), { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
    } catch (err) {
      out.push(fail(`hub ${url}`, `unreachable (${networkReason(err)})`, hubFix(url)));
      continue;
    }
    const got = Date.now();
    out.push(
      res.ok
        ? ok(`hub ${url}`, `answers (HTTP ${res.status} in ${got - sent} ms)`)
        : fail(`hub ${url}`, `answers HTTP ${res.status} to /v1/health: not a rampart hub?`, hubFix(url)),
    );
    out.push(clockCheck(url, res.headers.get('date'), (sent + got) / 2, got - sent));
  }
  return out;
}

function clockCheck(url: string, date: string | null, localMid: number, rtt: number): CheckResult {
  const remote = date ? Date.parse(date) : Number.NaN;
  if (Number.isNaN(remote))
    return warn(`clock vs ${url}`, 'the hub sent no Date header', 'check the clock with: timedatectl');
  // The Date header has whole seconds: up to 1 s of the difference is its rounding, plus half the trip.
  const skew = remote + 500 - localMid;
  const slack = 500 + rtt / 2;
  const text = `${skew >= 0 ? 'hub ahead by' : 'hub behind by'} ${(Math.abs(skew) / 1000).toFixed(1)} s`;
  const fix = 'run NTP on both machines (timedatectl set-ntp true; chrony or systemd-timesyncd)';
  if (Math.abs(skew) - slack > SKEW_FAIL_MS)
    return fail(
      `clock vs ${url}`,
      `${text}: signed messages older than ${DEFAULT_WINDOW_MS / 1000} s are dropped`,
      fix,
    );
  if (Math.abs(skew) - slack > SKEW_WARN_MS) return warn(`clock vs ${url}`, text, fix);
  return ok(`clock vs ${url}`, `in step (${text}, ±${(slack / 1000).toFixed(1)} s)`);
}

const DEFAULT_PORTS: Record<string, number> = {
  'mqtt:': 1883,
  'mqtts:': 8883,
  'nats:': 4222,
  'tls:': 4222,
  'amqp:': 5672,
  'amqps:': 5671,
};

/** A TCP connection to each broker URL: enough to tell "down or firewalled" from "refused us". */
export async function checkBroker(busUrl: string, timeoutMs = 3_000): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const text of busUrl
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(text);
    } catch {
      out.push(fail(`broker ${text}`, 'not a URL', 'fix bus.url in rampart.yaml or DATA/agent/agent.yaml'));
      continue;
    }
    const port = Number(u.port) || DEFAULT_PORTS[u.protocol];
    const shown = `${u.protocol}//${u.host}`; // never print credentials from the URL
    if (!port) {
      out.push(fail(`broker ${shown}`, `unknown scheme ${u.protocol}`, 'use mqtt://, nats:// or amqp://'));
      continue;
    }
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const err = await tcpConnect(host, port, timeoutMs);
    out.push(
      err
        ? fail(
            `broker ${shown}`,
            `unreachable (${err})`,
            `start the broker or open TCP ${port} from this server to ${host}`,
          )
        : ok(`broker ${shown}`, `TCP ${port} accepts connections`),
    );
  }
  return out;
}

function tcpConnect(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((done) => {
    const s = connect({ host, port });
    const finish = (why?: string) => {
      s.destroy();
      done(why);
    };
    s.setTimeout(timeoutMs, () => finish(`no answer in ${timeoutMs / 1000} s`));
    s.once('connect', () => finish());
    s.once('error', (e) => finish((e as NodeJS.ErrnoException).code ?? e.message));
  });
}

function networkReason(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'no answer in time';
  return e.cause?.code ?? e.cause?.message ?? fsReason(err);
}

function hubFix(url: string): string {
  return `start "rampart hub" there, or check the URL and that TCP ${new URL(url).port || 80} is open to this server (${url})`;
}

import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { traditionalTime } from '../../sources/syslog-parse.js';

const FACILITIES: Record<string, number> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};
const SEVERITIES: Record<string, number> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  error: 3,
  warning: 4,
  warn: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** `facility.severity` → the syslog PRI value, or undefined when either part is unknown. */
export function priority(text: string): number | undefined {
  const [f, s] = text.split('.');
  const fac = FACILITIES[f ?? ''];
  const sev = SEVERITIES[s ?? ''];
  return fac === undefined || sev === undefined ? undefined : fac * 8 + sev;
}

/** One RFC 3164 datagram: `<PRI>Mmm dd hh:mm:ss host tag: line` (control characters escaped). */
export function formatMessage(
  line: string,
  o: { pri: number; tag: string; host?: string; now?: number },
): Buffer {
  const safe = line.replace(
    /[\x00-\x08\x0a-\x1f\x7f]/g,
    (c) => `#${c.charCodeAt(0).toString(8).padStart(3, '0')}`,
  );
  return Buffer.from(
    `<${o.pri}>${traditionalTime(o.now ?? Date.now())} ${o.host ?? hostname()} ${o.tag}: ${safe}`,
  );
}

/**
 * `rampart syslog-inject`: every line read from `input` becomes one syslog datagram to the
 * listener, so a program that writes only its own log (an Apache error log piped in) feeds it.
 * Resolves with the number of lines sent once `input` ends.
 */
export async function inject(
  input: NodeJS.ReadableStream,
  o: { host: string; port: number; pri: number; tag: string },
): Promise<number> {
  const sock = createSocket(isIPv6(o.host) ? 'udp6' : 'udp4');
  let sent = 0;
  try {
    for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
      if (line.length === 0) continue;
      const msg = formatMessage(line.slice(0, 8192), o);
      await new Promise<void>((resolve, reject) =>
        sock.send(msg, o.port, o.host, (e) => (e ? reject(e) : resolve())),
      );
      sent++;
    }
  } finally {
    sock.close();
  }
  return sent;
}

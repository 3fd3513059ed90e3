/**
 * Logs shaped to fill `rampart check`'s tracker, for the memory cap (docs/adr/0065): each shape
 * makes the most (rule, address) pairs, or the largest per pair, that a log of its length can.
 * Addresses are not drawn at random but numbered, so every line's address is new where the shape
 * says so. Same shape and length, same bytes.
 */
import { createWriteStream } from 'node:fs';

export const HOSTILE_SHAPES = [
  /** Every line a new IPv4 address: the most pairs, each failing once (no record). */
  'v4-distinct',
  /** Every line a new IPv6 address: the largest key slots. */
  'v6-distinct',
  /** Half as many IPv6 addresses, each twice, the second time after all the others. */
  'v6-twice',
  /** IPv4 and IPv6 in turn, each address three times: key slots and records. */
  'mixed-thrice',
  /** nginx 4xx lines (maxretry 20: the longest ring), each address three times, then sshd and mail. */
  'rules-thrice',
  /** sshd `Invalid user` lines with a 2,000-character user name, every line a new address. */
  'long-lines',
  /** Each address five times in a row (sshd's maxretry), IPv4 and IPv6 in turn: a ban every 5 lines. */
  'ban-each',
] as const;
export type HostileShape = (typeof HOSTILE_SHAPES)[number];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const START = Date.UTC(2026, 10, 21, 0, 0, 0);

/** The i-th IPv4 address: from 1.0.0.0 in steps of 13, so consecutive ones share no /24 run. */
function v4(i: number): string {
  const x = 0x0100_0000 + i * 13;
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
}

/** The i-th IPv6 address, inside 2001:db8::/32. */
function v6(i: number): string {
  return `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::${((i * 7) & 0xffff).toString(16)}`;
}

function syslog(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 19)}`;
}

function accessStamp(ms: number): string {
  const d = new Date(ms);
  const day = String(d.getUTCDate()).padStart(2, '0');
  return `${day}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${d.toISOString().slice(11, 19)} +0000`;
}

const sshd = (ms: number, i: number, ip: string) =>
  `${syslog(ms)} host sshd[${1000 + (i % 30000)}]: Failed password for root from ${ip} port ${1024 + (i % 60000)} ssh2`;

/**
 * The line numbered `i` of `lines` for a shape; `ms` its time (the log runs at 200 lines a
 * second, so every sshd window of 10 minutes holds 120,000 lines).
 */
function line(shape: HostileShape, i: number, lines: number, ms: number): string {
  switch (shape) {
    case 'v4-distinct':
      return sshd(ms, i, v4(i));
    case 'v6-distinct':
      return sshd(ms, i, v6(i));
    case 'v6-twice':
      return sshd(ms, i, v6(i % Math.ceil(lines / 2)));
    case 'mixed-thrice': {
      // Each address three times, a third of the log apart.
      const k = i % Math.ceil(lines / 3);
      return sshd(ms, i, k % 2 === 0 ? v4(k) : v6(k));
    }
    case 'rules-thrice': {
      const k = i % Math.ceil(lines / 3);
      const ip = k % 4 === 3 ? v6(k) : v4(k);
      switch (k % 3) {
        case 0:
          return `${ip} - - [${accessStamp(ms)}] "GET /wp-login.php?${i} HTTP/1.1" 404 153 "-" "Mozilla/5.0"`;
        case 1:
          return `${syslog(ms)} mail postfix/smtpd[2001]: warning: unknown[${ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6`;
        default:
          return `${syslog(ms)} mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<bob>, method=PLAIN, rip=${ip}, lip=198.51.100.10, session=<a${i}>`;
      }
    }
    case 'ban-each': {
      const k = Math.floor(i / 5);
      return sshd(ms, i, k % 2 === 0 ? v4(k) : v6(k));
    }
    case 'long-lines':
      return `${syslog(ms)} host sshd[${1000 + (i % 30000)}]: Invalid user ${'x'.repeat(2000)}${i} from ${v4(i)} port 22`;
  }
}

/** Writes `lines` lines of `shape` to `path`. */
export async function generateHostileLog(path: string, shape: HostileShape, lines: number): Promise<void> {
  const out = createWriteStream(path);
  let buf = '';
  for (let i = 0; i < lines; i++) {
    buf += `${line(shape, i, lines, START + Math.floor(i * 5))}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      buf = '';
    }
  }
  out.write(buf);
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

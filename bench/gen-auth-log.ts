/**
 * A seeded, realistic sshd auth log for benchmarks: failed passwords, invalid users, preauth
 * disconnects, PAM failures, accepted logins, cron and systemd noise, from many distinct attacker
 * addresses (IPv4 and IPv6). Same seed, same bytes.
 */
import { createWriteStream } from 'node:fs';

/** mulberry32: tiny, fast, good enough for test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const USERS = [
  'admin',
  'test',
  'oracle',
  'ubnt',
  'pi',
  'user',
  'guest',
  'ftpuser',
  'postgres',
  'git',
  'deploy',
];
const LEGIT = ['alice', 'bob', 'carol', 'deploy'];

export interface GenOptions {
  lines: number;
  seed?: number;
  /** Distinct attacker addresses (a tenth of them IPv6). */
  attackers?: number;
}

function stamp(ms: number): string {
  const d = new Date(ms);
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const t = d.toISOString().slice(11, 19);
  return `${MONTHS[d.getUTCMonth()]} ${day} ${t}`;
}

/** Writes the log to `path`; resolves with the number of lines written. */
export async function generateAuthLog(path: string, opts: GenOptions): Promise<number> {
  const rand = rng(opts.seed ?? 42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const nAttackers = opts.attackers ?? 60_000;
  const attackers: string[] = [];
  for (let i = 0; i < nAttackers; i++) {
    if (i % 10 === 9) {
      const h = () => Math.floor(rand() * 0x10000).toString(16);
      attackers.push(`2a0${Math.floor(rand() * 10)}:${h()}:${h()}:${h()}::${h()}`);
    } else {
      attackers.push(
        `${1 + Math.floor(rand() * 222)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.${1 + Math.floor(rand() * 254)}`,
      );
    }
  }
  const legit = ['198.51.100.10', '198.51.100.11', '2001:db8::10'];
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  let ms = Date.UTC(2026, 10, 21, 0, 0, 0);
  let pid = 10_000;
  let buf: string[] = [];
  const flush = async () => {
    if (!out.write(buf.join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
    buf = [];
  };
  for (let i = 0; i < opts.lines; i++) {
    ms += Math.floor(rand() * 100);
    const ts = stamp(ms);
    const r = rand();
    // Attackers come in bursts: a skewed pick makes some addresses hit hard and many hit rarely.
    const ip = attackers[Math.floor(rand() ** 2 * nAttackers)]!;
    const port = 1024 + Math.floor(rand() * 64000);
    if (rand() < 0.02) pid++;
    const sshd = rand() < 0.5 ? `sshd[${pid}]` : `sshd-session[${pid}]`;
    let line: string;
    if (r < 0.3) line = `${sshd}: Failed password for root from ${ip} port ${port} ssh2`;
    else if (r < 0.42)
      line = `${sshd}: Failed password for invalid user ${pick(USERS)} from ${ip} port ${port} ssh2`;
    else if (r < 0.52) line = `${sshd}: Invalid user ${pick(USERS)} from ${ip} port ${port}`;
    else if (r < 0.6)
      line = `${sshd}: Connection closed by authenticating user root ${ip} port ${port} [preauth]`;
    else if (r < 0.63)
      line = `${sshd}: Disconnected from invalid user ${pick(USERS)} ${ip} port ${port} [preauth]`;
    else if (r < 0.68)
      line = `${sshd}: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=${ip}  user=root`;
    else if (r < 0.7) line = `${sshd}: Received disconnect from ${ip} port ${port}:11: Bye Bye [preauth]`;
    else if (r < 0.74)
      line = `${sshd}: Accepted publickey for ${pick(LEGIT)} from ${pick(legit)} port ${port} ssh2: ED25519 SHA256:Zk3v0fT8`;
    else if (r < 0.78)
      line = `${sshd}: pam_unix(sshd:session): session opened for user ${pick(LEGIT)}(uid=1000) by (uid=0)`;
    else if (r < 0.8) line = `sshd[${pid}]: pam_unix(sshd:session): session closed for user ${pick(LEGIT)}`;
    else if (r < 0.88)
      line = `CRON[${pid + 7}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)`;
    else if (r < 0.93)
      line = `CRON[${pid + 7}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)`;
    else if (r < 0.97)
      line = `systemd[1]: Started session-${pid}.scope - Session ${pid} of User ${pick(LEGIT)}.`;
    else line = `systemd-logind[612]: New session ${pid} of user ${pick(LEGIT)}.`;
    buf.push(`${ts} web1 ${line}\n`);
    if (buf.length >= 4096) await flush();
  }
  await flush();
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
  return opts.lines;
}

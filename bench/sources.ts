/**
 * Log sources throughput, each side by side with a plain baseline in the same run:
 * - file: FileSource reading a 500,000-line auth log from the start vs node:readline on the file;
 * - syslog-tcp: 200,000 octet-counted RFC 5424 messages sent by socat into SyslogSource (framing +
 *   parsing + conversion) vs the same bytes into a bare TCP server that only splits lines.
 */
import { spawn } from 'node:child_process';
import { createReadStream, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FileSource } from '../src/sources/file.js';
import { LineSplitter } from '../src/sources/line-splitter.js';
import { SyslogSource } from '../src/sources/syslog.js';
import type { Source } from '../src/sources/types.js';
import type { Emit } from './list.js';

const FILE_LINES = 500_000;
const SYSLOG_MSGS = 200_000;

function authLine(i: number): string {
  const ip = `203.0.${(i >> 8) & 255}.${i & 255}`;
  return i % 3 === 0
    ? `Nov 21 13:23:24 web1 sshd[${1000 + (i % 5000)}]: Failed password for invalid user admin${i % 97} from ${ip} port ${1024 + (i % 60000)} ssh2`
    : `Nov 21 13:23:24 web1 CRON[${i}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)`;
}

type Timed = { n: number; seconds: number };

async function timeIt(fn: () => Promise<number>): Promise<Timed> {
  const t0 = process.hrtime.bigint();
  const n = await fn();
  return { n, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

function sendWithSocat(file: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('socat', ['-u', `OPEN:${file}`, `TCP:127.0.0.1:${port}`], { stdio: 'ignore' });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`socat exited ${code}`))));
  });
}

/** Starts a source, runs `feed`, waits for `n` lines, stops it; returns the count. */
async function drain(src: Source, n: number, feed?: () => Promise<void>): Promise<number> {
  let got = 0;
  await src.start(() => {
    got++;
  });
  await feed?.();
  await waitCount(() => got, n);
  await src.stop();
  return got;
}

function report(name: string, ours: Timed, base: Timed, baseline: string): Record<string, unknown> {
  return {
    bench: 'sources',
    case: name,
    lines: ours.n,
    seconds: +ours.seconds.toFixed(3),
    linesPerSecond: Math.round(ours.n / ours.seconds),
    baseline,
    baselineLinesPerSecond: Math.round(base.n / base.seconds),
    ratio: +(base.seconds / ours.seconds).toFixed(2),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function waitCount(get: () => number, n: number): Promise<void> {
  while (get() < n) await new Promise((r) => setTimeout(r, 5));
}

export default async function (emit: Emit): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-bench-sources-'));
  try {
    const log = join(dir, 'auth.log');
    writeFileSync(log, Array.from({ length: FILE_LINES }, (_, i) => `${authLine(i)}\n`).join(''));

    const base = await timeIt(async () => {
      let n = 0;
      for await (const _ of createInterface({
        input: createReadStream(log),
        crlfDelay: Number.POSITIVE_INFINITY,
      }))
        n++;
      return n;
    });
    const ours = await timeIt(() => drain(new FileSource({ paths: [log], fromStart: true }), FILE_LINES));
    emit(report('file', ours, base, 'node:readline over the same file'));

    const wire = join(dir, 'wire');
    const msgs: string[] = [];
    for (let i = 0; i < SYSLOG_MSGS; i++) {
      const m = `<38>1 2026-11-21T13:23:24.${String(i % 1000).padStart(3, '0')}Z web1 sshd ${1000 + (i % 5000)} - - ${authLine(i * 3).slice(33)}`;
      msgs.push(`${Buffer.byteLength(m)} ${m}\n`);
    }
    writeFileSync(wire, msgs.join(''));

    const bare = await timeIt(async () => {
      let n = 0;
      const server = createServer((c) => {
        const sp = new LineSplitter();
        c.on('data', (d: Buffer) =>
          sp.push(d, () => {
            n++;
          }),
        );
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      await sendWithSocat(wire, (server.address() as AddressInfo).port);
      await waitCount(() => n, SYSLOG_MSGS);
      await new Promise((r) => server.close(r));
      return n;
    });
    const syslogSrc = new SyslogSource({ tcp: { port: 0 } });
    const syslog = await timeIt(() =>
      drain(syslogSrc, SYSLOG_MSGS, () => sendWithSocat(wire, syslogSrc.addresses().tcp!.port)),
    );
    emit(
      report('syslog-tcp-rfc5424-octet-counted', syslog, bare, 'bare TCP server splitting the same bytes'),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

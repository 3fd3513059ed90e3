import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Request } from 'zeromq';
import { ClusterPublisher } from '../../../src/compat/fail2ban-zmq-tools/publisher.js';
import { CompatMetrics } from '../../../src/compat/metrics.js';
import { silentLogger } from '../../../src/core/logger.js';
import { requirements } from '../../helpers/requirements.js';
import { freePort, ORIGINALS, type Original, startOriginal } from './originals.js';

const TOKEN = 'tok';
const pad = (n: number) => 'a'.repeat(n);

/** Frames both publishers must answer identically (auth on, token "tok"). */
const AGREE: string[] = [
  'tok|web1|sshd|Ban|192.0.2.1',
  'tok|web1|sshd|unban|192.0.2.1',
  'tok|web1.example.org.|sshd|BAN|192.0.2.1',
  'tok|web1|ss-h_d|UnBan|198.51.100.7',
  'tok|web1||Ban|192.0.2.1',
  'bad|web1|sshd|Ban|192.0.2.1',
  'TOK|web1|sshd|Ban|192.0.2.1',
  'web1|sshd|Ban|192.0.2.1',
  'tok|web1|sshd|Ban|192.0.2.1|x',
  'tok|web1|sshd',
  'tok|-web1|sshd|Ban|192.0.2.1',
  'tok|web1-|sshd|Ban|192.0.2.1',
  'tok|web_1|sshd|Ban|192.0.2.1',
  'tok|a..b|sshd|Ban|192.0.2.1',
  `tok|${pad(64)}|sshd|Ban|1.2.3.4`.slice(0, 64),
  'tok|web1|sshd|Bann|192.0.2.1',
  'tok|web1|sshd| Ban|192.0.2.1',
  'tok|web1|sshd|Ban|192.0.2.256',
  'tok|web1|sshd|Ban|',
  'tok|web1|sshd|Ban|192.0.2.1/24',
  'tok|web1|sshd|Ban|example.org',
  'tok|web1|ssh d|Ban|192.0.2.1',
  'tok|web1|sshd;id|Ban|192.0.2.1',
  'tok|web1|$(id)|Ban|192.0.2.1',
  'tok|web1|sshd|Ban|192.0.2.1;id',
  '||||',
  '|||',
  `tok|${pad(30)}.${pad(10)}|jail|Ban|203.0.113.9`,
  // 146 bytes: the original's 64-byte ZMQ_MAXMSGSIZE never took effect (set after bind)
  `tok|${pad(60)}.${pad(60)}|sshd|Ban|192.0.2.1`,
  'tok|web1|sshd|Ban|192.0.2.1'.padEnd(65, 'x'),
];

/**
 * Frames where rampart answers differently on purpose (docs/compat/fail2ban-zmq-tools.md):
 * the original's inet_aton takes shorthand, octal and trailing junk, and it refuses IPv6; it
 * takes frames of any size. rampart NAKs the first, takes IPv6, and NAKs frames over 1024 bytes.
 */
const DIVERGE: Array<[string, { original: string; rampart: string }]> = [
  ['tok|web1|sshd|Ban|127.1', { original: 'web1|sshd|Ban|127.1', rampart: 'NAK' }],
  ['tok|web1|sshd|Ban|0x7f.0.0.1', { original: 'web1|sshd|Ban|0x7f.0.0.1', rampart: 'NAK' }],
  ['tok|web1|sshd|Ban|192.0.2.1 x', { original: 'web1|sshd|Ban|192.0.2.1 x', rampart: 'NAK' }],
  ['tok|web1|sshd|Ban|192.0.2.1  ', { original: 'web1|sshd|Ban|192.0.2.1  ', rampart: 'NAK' }],
  ['tok|web1|sshd|Ban|010.0.2.1', { original: 'web1|sshd|Ban|010.0.2.1', rampart: 'NAK' }],
  ['tok|web1|sshd|Ban|2001:db8::1', { original: 'NAK', rampart: 'web1|sshd|Ban|2001:db8::1' }],
  [
    `tok|web1|${'j'.repeat(1100)}|Ban|192.0.2.1`,
    { original: `web1|${'j'.repeat(1100)}|Ban|192.0.2.1`, rampart: 'NAK' },
  ],
];

/** Frames that kill the original publisher's thread; rampart answers NAK and keeps serving. */
const CRASH: Array<string | Buffer> = [
  'tok||sshd|Ban|192.0.2.1', // empty host name: an IndexError in the original
  'tok|web1|sshd|Ban', // the right token and three fields: an IndexError
  Buffer.from([0x74, 0x6f, 0x6b, 0x7c, 0xff, 0xfe, 0x7c, 0x61, 0x7c, 0x42, 0x61, 0x6e, 0x7c, 0x31]), // not UTF-8
];

type Answer = string;

/** One request on a fresh REQ socket: the answer, or `(disconnected)` if the peer hung up on us. */
async function ask(url: string, frame: string | Buffer): Promise<Answer> {
  const sock = new Request({ linger: 0 });
  const disconnected = (async () => {
    for await (const ev of sock.events) if (ev.type === 'disconnect') return '(disconnected)';
    return '(closed)';
  })();
  sock.connect(url);
  try {
    await sock.send(frame);
    return await Promise.race([sock.receive().then(([m]) => m!.toString('utf8')), disconnected]);
  } finally {
    sock.close();
  }
}

const req = requirements('f2b-zmq publisher fuzz against the original', [
  'cmd:/usr/bin/python3',
  `file:${ORIGINALS}/publisher.py`,
]);

describe.skipIf(req.skip)('f2b-zmq publisher: the same hostile frames at the original and at rampart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-f2bfuzz-'));
  const metrics = new CompatMetrics();
  const rampart = new ClusterPublisher({
    config: { replyUrl: 'tcp://127.0.0.1:*', broadcastUrl: 'tcp://127.0.0.1:*', auth: true, token: TOKEN },
    log: silentLogger(),
    metrics,
  });
  let original: Original;
  let originalUrl = '';

  async function startOriginalPublisher(): Promise<[Original, string]> {
    const rep = `tcp://127.0.0.1:${await freePort()}`;
    const o = await startOriginal(mkdtempSync(join(dir, 'p-')), 'publisher', {
      replybindurl: rep,
      broadcasterbindurl: `tcp://127.0.0.1:${await freePort()}`,
      auth: 'true',
      authtoken: TOKEN,
    });
    return [o, rep];
  }

  beforeAll(async () => {
    await rampart.start();
    [original, originalUrl] = await startOriginalPublisher();
  });
  afterAll(async () => {
    await original?.stop();
    await rampart.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every ordinary frame exactly as the original does', async () => {
    const differences: string[] = [];
    let accepted = 0;
    for (const frame of AGREE) {
      const [a, b] = [await ask(originalUrl, frame), await ask(rampart.replyEndpoint, frame)];
      if (a !== b) differences.push(`${JSON.stringify(frame)}: original ${a}, rampart ${b}`);
      if (a !== 'NAK') accepted++;
    }
    expect(differences).toEqual([]);
    // The list must exercise both answers, or it proves nothing.
    expect(accepted).toBeGreaterThanOrEqual(5);
    expect(AGREE.length - accepted).toBeGreaterThanOrEqual(15);
    expect(original.events.filter((e) => e[0] === 'crash')).toEqual([]);
  });

  it('differs only where documented', async () => {
    for (const [frame, want] of DIVERGE) {
      const rampartAnswer = await ask(rampart.replyEndpoint, frame);
      const originalAnswer = await ask(originalUrl, frame);
      expect({ frame, original: originalAnswer, rampart: rampartAnswer }).toEqual({ frame, ...want });
    }
  });

  it('survives, with a NAK, the frames that kill the original, and counts each refusal', async () => {
    for (const frame of CRASH) {
      const [o, url] = await startOriginalPublisher();
      try {
        void ask(url, frame).catch(() => {});
        const [, why] = await o.next((k) => k === 'crash');
        expect(why).toMatch(/IndexError|UnicodeDecodeError/);
      } finally {
        await o.stop();
      }
      expect(await ask(rampart.replyEndpoint, frame)).toBe('NAK');
    }
    expect(await ask(rampart.replyEndpoint, '')).toBe('NAK');
    expect(await ask(rampart.replyEndpoint, 'tok|web1|sshd|Ban|192.0.2.1')).toBe('web1|sshd|Ban|192.0.2.1');
    expect(await metrics.droppedCount('f2b-zmq', 'not-utf8')).toBe(1);
    expect(await metrics.droppedCount('f2b-zmq', 'empty')).toBe(1);
    expect(await metrics.droppedCount('f2b-zmq', 'bad-hostname')).toBeGreaterThanOrEqual(1);
  });
});

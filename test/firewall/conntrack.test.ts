import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { ConntrackFlusher, conntrackLines, withConntrack } from '../../src/firewall/conntrack.js';
import { createFirewall } from '../../src/firewall/create.js';
import { IpsetFirewall } from '../../src/firewall/ipset.js';
import { canConnect, createLan, type Host, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const PORT = 9090;
const ECHO = `
const net = require('node:net');
net.createServer((c) => { c.on('error', () => {}); c.pipe(c); }).listen(${PORT}, '::', () => process.stdout.write('ready\\n'));
`;
// A long-lived client: connects once, then on every "ping" on stdin sends a byte and reports
// whether the server echoed it within 1.5 s on the SAME connection.
const CLIENT = `
const net = require('node:net');
const c = net.connect({ host: process.argv[1], port: ${PORT} }, () => process.stdout.write('up\\n'));
let waiting = null;
c.on('data', () => { if (waiting) { clearTimeout(waiting); waiting = null; process.stdout.write('alive\\n'); } });
c.on('error', (e) => process.stdout.write('error ' + e.code + '\\n'));
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {
  c.write('x');
  waiting = setTimeout(() => { waiting = null; process.stdout.write('dead\\n'); }, 1500);
});
`;

function inNs(host: Host, args: string[], stdin: 'pipe' | 'ignore'): ChildProcess {
  return spawn('ip', ['netns', 'exec', host.ns, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
}

/** A connection that stays open; `probe()` says whether it still carries data. */
async function longLived(client: Host, addr: string) {
  const child = inNs(client, [process.execPath, '-e', CLIENT, addr], 'pipe');
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => (await lines.next()).value as string;
  expect(await next()).toBe('up');
  return {
    async probe() {
      child.stdin!.write('ping\n');
      return next();
    },
    stop: () => child.kill('SIGKILL'),
  };
}

describe('conntrack lines', () => {
  it('conntrack - a range becomes address and mask, for each chosen direction', () => {
    expect(conntrackLines(parseTarget('192.0.2.7'), ['src'])).toEqual(['-D -s 192.0.2.7']);
    expect(conntrackLines(parseTarget('198.51.100.0/28'), ['src', 'dst'])).toEqual([
      '-D -s 198.51.100.0 --mask-src 255.255.255.240',
      '-D -d 198.51.100.0 --mask-dst 255.255.255.240',
    ]);
    expect(conntrackLines(parseTarget('2001:db8::/120'), ['src'])).toEqual([
      '-D -s 2001:db8:: --mask-src ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00',
    ]);
  });
});

describe('conntrack in the factory', () => {
  it('conntrack - is not added to the dry-run backend: cutting connections without enforcing bans helps no one', () => {
    expect(createFirewall({ backend: 'dry-run', conntrack: true }).name).toBe('dry-run');
    expect(() => createFirewall({ backend: 'dry-run', conntrack: { directions: ['up'] } } as never)).toThrow(
      /firewall\.conntrack/,
    );
  });
});

const req = requirements('conntrack backend', [
  'netns',
  'cmd:conntrack',
  'cmd:ipset',
  'cmd:iptables',
  'cmd:ip6tables',
]);

describe.skipIf(req.skip)('conntrack backend', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let echo: ChildProcess;
  beforeAll(async () => {
    lan = await createLan(2, 'conn');
    [server, client] = lan.hosts as [Host, Host];
    // The common ruleset shape: established flows are accepted before the ban check, which is
    // exactly why an attacker who is already connected survives a ban without a flush.
    for (const [tool, set] of [
      ['iptables', 'blocklist'],
      ['ip6tables', 'blocklist-net-v6'],
    ] as const) {
      await server.exec(tool, [
        '-A',
        'INPUT',
        '-m',
        'conntrack',
        '--ctstate',
        'ESTABLISHED,RELATED',
        '-j',
        'ACCEPT',
      ]);
      await server.exec('ipset', [
        'create',
        set,
        set.includes('net') ? 'hash:net' : 'hash:ip',
        'family',
        set.endsWith('v6') ? 'inet6' : 'inet',
        'timeout',
        '0',
      ]);
      await server.exec(tool, ['-A', 'INPUT', '-m', 'set', '--match-set', set, 'src', '-j', 'DROP']);
    }
    echo = inNs(server, [process.execPath, '-e', ECHO], 'ignore');
    await new Promise<void>((resolve, reject) => {
      echo.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
      echo.once('exit', (code) => reject(new Error(`echo server exited with ${code}`)));
    });
  }, 30_000);
  afterAll(async () => {
    echo?.kill('SIGKILL');
    await lan?.destroy();
  });

  for (const f of [4, 6] as const) {
    it(`conntrack - IPv${f}: an established connection survives a ban alone and is cut off by the flush`, async () => {
      const prefix = ['ip', 'netns', 'exec', server.ns];
      const ipset = new IpsetFirewall({ prefix, create: false });
      const flusher = new ConntrackFlusher({ prefix });
      const serverAddr = f === 4 ? server.v4 : server.v6;
      // IPv6 bans a range around the client, to cover the masked flush.
      const ban = parseTarget(f === 4 ? client.v4 : '2001:db8::/120');
      const conn = await longLived(client, serverAddr);
      try {
        expect(await conn.probe()).toBe('alive');
        ipset.add(ban, 600);
        await ipset.commit();
        expect(await canConnect(client, serverAddr, PORT, 800)).toBe(false);
        // Banned, yet the open connection still works: the control that makes this test meaningful.
        expect(await conn.probe()).toBe('alive');
        const fw = withConntrack(ipset, flusher);
        fw.add(ban, 600);
        expect(fw.pending()).toBe(1);
        expect(await fw.commit()).toEqual({ added: 1, deleted: 0 });
        expect(flusher.pending()).toBe(0);
        expect(await conn.probe()).toBe('dead');
        // Nothing left to drop is not an error.
        flusher.add(ban, 600);
        await expect(flusher.commit()).resolves.toEqual({ added: 1, deleted: 0 });
      } finally {
        conn.stop();
        ipset.delete(ban);
        await ipset.commit();
      }
    }, 30_000);
  }

  it('conntrack - a failed flush is reported with the address and stays staged', async () => {
    const flusher = new ConntrackFlusher({
      prefix: ['ip', 'netns', 'exec', server.ns],
      program: 'conntrack-missing',
    });
    flusher.add(parseTarget('192.0.2.3'), 60);
    await expect(flusher.commit()).rejects.toThrow(/conntrack: .*192\.0\.2\.3.*not found/);
    expect(flusher.pending()).toBe(1);
  });
});

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../../helpers/netns.js';
import { cliIn } from '../../helpers/netns-pair.js';
import { requirements } from '../../helpers/requirements.js';
import { tempDir } from '../tmp.js';
import { CLI, daemon, eventually, members, timeoutOf } from '../vallumd/harness.js';

const req = requirements('syslog-blacklist daemon', [
  'root',
  'netns',
  'cmd:ipset',
  'cmd:iptables',
  'cmd:nft',
  'cmd:logger',
  'cmd:socat',
  'cmd:rsyslogd',
  `file:${CLI}`,
]);

const SSH = String.raw`[failed ssh user] 12h # amount of time user is blocked
^sshd\[\d+\]: Failed password for \w+ from {IP_NUMBER}

[apache probe] 1d
{IP_NUMBER} 404 /phpMyAdmin
`;
const PROBE = String.raw`
[port probe] 10m
^kernel\[\d+\]: probe from {IP_NUMBER}
`;
const PORT = 8080;
const failed = (ip: string) => `Failed password for root from ${ip} port 22 ssh2`;

describe.skipIf(req.skip)('rampart syslog-blacklist: a real listener filling a real ipset', () => {
  const tmp = tempDir('sbl');
  const conf = tmp.write('syslog-blacklist.conf', SSH);
  const pidfile = path.join(tmp.dir, 'sbl.pid');
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void } | undefined;
  let sbl: ReturnType<typeof daemon>;
  let operatorSets: string;

  /** `logger` to the listener's default address, with sshd's tag and a pid. */
  const logger = (msg: string, tag = 'sshd') =>
    server.exec('logger', [
      '--udp',
      '--server',
      '127.0.0.1',
      '--port',
      '2222',
      '--rfc3164',
      '-t',
      tag,
      '--id=4242',
      msg,
    ]);
  const banned = (ip: string) =>
    server.exec('ipset', ['test', 'blacklist', ip]).then(
      () => true,
      () => false,
    );
  /** Everything sent before has been handled: a marker address is banned after it. */
  let n = 0;
  async function sync(): Promise<void> {
    const marker = `192.0.2.${200 + ++n}`;
    await logger(failed(marker));
    await eventually(() => banned(marker), `marker ${marker}`);
  }
  const saveOperatorSets = async () =>
    (await server.exec('ipset', ['save', 'whitelist'])) + (await server.exec('ipset', ['save', 'blackout']));

  beforeAll(async () => {
    lan = await createLan(2, 'sbl');
    [server, client] = lan.hosts as [Host, Host];
    // The original's setup (its README): three hash:ip sets, bans with a kernel timeout.
    await server.exec('ipset', ['create', 'blacklist', 'hash:ip', 'timeout', '0']);
    await server.exec('ipset', ['create', 'whitelist', 'hash:ip']);
    await server.exec('ipset', ['create', 'blackout', 'hash:ip']);
    await server.exec('ipset', ['add', 'whitelist', '192.0.2.50']);
    await server.exec('ipset', ['add', 'whitelist', client.v4.replace(/\.\d+$/, '.99')]);
    await server.exec('ipset', ['add', 'blackout', '192.0.2.60']);
    await server.exec('iptables', [
      '-A',
      'INPUT',
      '-m',
      'set',
      '--match-set',
      'blacklist',
      'src',
      '-j',
      'DROP',
    ]);
    operatorSets = await saveOperatorSets();
    listener = await tcpListener(server, PORT);
    // Default --listen (127.0.0.1:2222): free in the test's own namespace.
    sbl = daemon(server, process.execPath, [
      CLI,
      'syslog-blacklist',
      '--no-daemon',
      `--config=${conf}`,
      `--pidfile=${pidfile}`,
    ]);
    await sbl.until(/listening/);
  }, 60_000);

  afterAll(async () => {
    await sbl?.stop('SIGKILL');
    listener?.stop();
    await lan?.destroy();
  });

  it('logger → listener: the address is in blacklist with the section time, its TCP is dropped, logged', async () => {
    expect(await canConnect(client, server.v4, PORT)).toBe(true);
    await logger(failed(client.v4));
    await eventually(() => banned(client.v4), 'client banned');
    const t = await timeoutOf(server, 'blacklist', client.v4);
    expect(t).toBeGreaterThan(43_100);
    expect(t).toBeLessThanOrEqual(43_200);
    expect(await canConnect(client, server.v4, PORT, 1500)).toBe(false);
    expect(sbl.output()).toContain(`blacklisting ${client.v4} for failed ssh user`);
    expect((await server.exec('cat', [pidfile])).trim()).toMatch(/^\d+$/);
  });

  it('a whitelisted address is never added; whitelist and blackout stay as the operator left them', async () => {
    await logger(failed('192.0.2.50'));
    await logger(failed('192.0.2.60')); // in blackout: banned in blacklist too, blackout untouched
    await sync();
    expect(await banned('192.0.2.50')).toBe(false);
    expect(sbl.output()).toMatch(/"ip":"192\.0\.2\.50".*whitelisted: not blacklisting/);
    expect(await banned('192.0.2.60')).toBe(true);
    expect(await saveOperatorSets()).toBe(operatorSets);
  });

  it('syslog-inject sends each stdin line as a syslog message (a long line is cut, not fatal)', async () => {
    const lines = `\n192.0.2.70 404 /phpMyAdmin-2.11\n${'x'.repeat(100_000)}\n192.0.2.71 404 /phpMyAdmin\n`;
    await server.exec(process.execPath, [CLI, 'syslog-inject', '--tag', 'apache'], { input: lines });
    await eventually(() => banned('192.0.2.71'), 'injected line banned');
    expect(await banned('192.0.2.70')).toBe(true);
    expect(await timeoutOf(server, 'blacklist', '192.0.2.70')).toBeGreaterThan(86_000);
    expect(sbl.output()).toContain('blacklisting 192.0.2.70 for apache probe');
  });

  it('a real rsyslogd forwarding by omfwd UDP reaches the listener', async () => {
    const inSock = path.join(tmp.dir, 'rsyslog-in.sock');
    const rconf = tmp.write(
      'rsyslog.conf',
      [
        `global(workDirectory="${tmp.dir}")`,
        'module(load="imuxsock" SysSock.Use="off")',
        `input(type="imuxsock" Socket="${inSock}")`,
        '*.* action(type="omfwd" target="127.0.0.1" port="2222" protocol="udp")',
        '',
      ].join('\n'),
    );
    const rsyslog = daemon(server, 'rsyslogd', ['-n', '-f', rconf, '-i', path.join(tmp.dir, 'rsyslog.pid')]);
    try {
      await eventually(
        () =>
          server.exec('test', ['-S', inSock]).then(
            () => true,
            () => false,
          ),
        'rsyslog input socket',
      );
      await server.exec('logger', ['-u', inSock, '-t', 'sshd', '--id=77', failed('192.0.2.80')]);
      await eventually(() => banned('192.0.2.80'), 'forwarded line banned');
      expect(sbl.output()).toContain('blacklisting 192.0.2.80 for failed ssh user');
    } finally {
      await rsyslog.stop();
    }
  });

  it('malformed datagrams (binary, 65 507 bytes, invalid UTF-8, empty) are each logged; the daemon keeps going', async () => {
    const from = sbl.output().length;
    const send = async (name: string, bytes: Buffer) => {
      const f = tmp.write(name, '');
      await writeFile(f, bytes);
      // -b: one read, one datagram (socat's default block is 8 KiB).
      await server.exec('socat', ['-u', '-b', '65536', `OPEN:${f}`, 'UDP-SENDTO:127.0.0.1:2222']);
    };
    await send('binary', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x1b, 0x7f]));
    await send('huge', Buffer.from(`<38>sshd[1]: ${'A'.repeat(65_507 - 14)}`));
    await send(
      'latin1',
      Buffer.from(`<38>sshd[1]: Failed password for root from 192.0.2.90 port 1 \xf6\xf6`, 'latin1'),
    );
    await send('empty-ish', Buffer.from('<38>'));
    await logger(failed('999.1.1.1'));
    await logger(failed('127.0.0.1'));
    await logger(failed(client.v4)); // still banned: not re-added, not logged again
    await sync();
    const out = sbl.output().slice(from);
    expect(out.match(/not valid UTF-8/g)?.length).toBe(2);
    expect(out).toMatch(/"line":"[^"]*#000#001#002\ufffd\ufffd\ufffd#033#177".*not valid UTF-8/);
    expect(out).toMatch(
      /"line":"[^"]*Failed password for root from 192\.0\.2\.90 port 1 \ufffd\ufffd".*not valid UTF-8/,
    );
    expect(out).toMatch(/"maxMessageBytes":8192.*longer than the cap: cut/);
    expect(out).toMatch(/empty syslog message: ignored/);
    // Hostile bytes around the address do not stop a real match.
    expect(await banned('192.0.2.90')).toBe(true);
    expect(await banned('127.0.0.1')).toBe(false);
    expect(out).toMatch(/"line":"[^"]*from 127\.0\.0\.1 port 22 ssh2".*never banned \(loopback/);
    expect(out).not.toContain('999.1.1.1');
    expect(out).not.toContain(`blacklisting ${client.v4}`);
    expect(sbl.alive()).toBe(true);
  });

  it('a ban the kernel cannot take (no blacklist-v6 set) is one error line; the daemon goes on', async () => {
    const from = sbl.output().length;
    await logger(failed('2001:db8::66'));
    await sbl.until(/"ip":"2001:db8::66".*set \\"blacklist-v6\\" does not exist.*blacklisting failed/, from);
    await sync();
    expect(sbl.alive()).toBe(true);
  });

  it('SIGHUP re-reads the config: a new [section] applies; a broken file keeps the running one', async () => {
    await writeFile(conf, SSH + PROBE);
    let from = sbl.output().length;
    sbl.child.kill('SIGHUP');
    await sbl.until(/port probe.*read config/, from);
    await logger('probe from 192.0.2.100', 'kernel');
    await eventually(() => banned('192.0.2.100'), 'new section applied');
    const t = await timeoutOf(server, 'blacklist', '192.0.2.100');
    expect(t).toBeGreaterThan(500);
    expect(t).toBeLessThanOrEqual(600);
    await writeFile(conf, `${SSH}\n[broken] 12q\n^x {IP_NUMBER}\n`);
    from = sbl.output().length;
    sbl.child.kill('SIGHUP');
    await sbl.until(
      /sbl\.conf|syslog-blacklist\.conf:\d+.*reload failed; keeping the running configuration/,
      from,
    );
    expect(sbl.output().slice(from)).toMatch(/syslog-blacklist\.conf:\d+/);
    await logger('probe from 192.0.2.101', 'kernel');
    await eventually(() => banned('192.0.2.101'), 'old config still runs');
    expect(sbl.alive()).toBe(true);
  });

  it('--debug logs every line; --blocked times a section without one; SIGTERM exits 0, pidfile gone', async () => {
    const pid2 = path.join(tmp.dir, 'debug.pid');
    const dbg = daemon(server, process.execPath, [
      CLI,
      'syslog-blacklist',
      '--debug',
      '--blocked=2h',
      '--listen=127.0.0.1:2223',
      `--config=${tmp.write('debug.conf', `${SSH}\n[no time]\n^cron: nothing from {IP_NUMBER}\n`)}`,
      `--pidfile=${pid2}`,
    ]);
    try {
      await dbg.until(/listening/);
      await server.exec('logger', [
        '--udp',
        '--server',
        '127.0.0.1',
        '--port',
        '2223',
        '-t',
        'cron',
        'nothing from 192.0.2.130',
      ]);
      await dbg.until(/"line":"[^"]* cron: nothing from 192\.0\.2\.130".*received/);
      await dbg.until(/blacklisting 192\.0\.2\.130 for no time/);
      const t = await timeoutOf(server, 'blacklist', '192.0.2.130');
      expect(t).toBeGreaterThan(7100);
      expect(t).toBeLessThanOrEqual(7200);
      expect((await server.exec('cat', [pid2])).trim()).toMatch(/^\d+$/);
      const exited = new Promise<number | null>((r) => dbg.child.once('exit', r));
      dbg.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(server.exec('test', ['-e', pid2])).rejects.toThrow();
    } finally {
      await dbg.stop('SIGKILL');
    }
  });

  it('--firewall nftables: the ban goes to nftables, the whitelist ipset is still honoured', async () => {
    const nft = daemon(server, process.execPath, [
      CLI,
      'syslog-blacklist',
      '--firewall=nftables',
      '--listen=127.0.0.1:2224',
      `--config=${tmp.write('nft.conf', SSH)}`,
    ]);
    try {
      await nft.until(/listening/);
      const send = (ip: string) =>
        server.exec('logger', [
          '--udp',
          '--server',
          '127.0.0.1',
          '--port',
          '2224',
          '-t',
          'sshd',
          '--id=9',
          failed(ip),
        ]);
      await send('192.0.2.50');
      await send('192.0.2.120');
      await nft.until(/blacklisting 192\.0\.2\.120 for failed ssh user/);
      expect(nft.output()).toMatch(/"ip":"192\.0\.2\.50".*whitelisted: not blacklisting/);
      await eventually(
        async () => (await server.exec('nft', ['list', 'ruleset'])).includes('192.0.2.120'),
        'ban in nftables',
      );
      expect(await server.exec('nft', ['list', 'ruleset'])).not.toContain('192.0.2.50');
    } finally {
      await nft.stop('SIGKILL');
    }
  });

  it('bad flags and a bad config are one usage error, exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /unknown option '--bogus'/],
      [['--listen', 'nowhere'], /--listen/],
      [['--blocked', '12q'], /--blocked/],
      [['--blacklist', 'whitelist'], /whitelist.*never written/],
      [['--blacklist', 'whitelist-v6'], /whitelist-v6.*never written/],
      [['--firewall', 'pf'], /--firewall/],
      // Fails after the listener is bound: it must be closed again, not keep the process alive.
      [
        [`--config=${tmp.write('pid.conf', SSH)}`, '--pidfile=/nonexistent/sbl.pid'],
        /--pidfile: cannot write \/nonexistent\/sbl\.pid \(ENOENT\)/,
      ],
      [[`--config=${tmp.write('bad.conf', '^no section {IP_NUMBER}\n')}`], /bad\.conf:1/],
      [['--config=/nonexistent/sbl.conf'], /nonexistent\/sbl\.conf/],
    ];
    for (const [args, re] of cases) {
      const r = await cliIn(server, CLI, ['syslog-blacklist', '--listen', '127.0.0.1:0', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(re);
      expect(r.stderr.trim().split('\n').length, r.stderr).toBeLessThanOrEqual(2);
    }
    // The running daemon holds 127.0.0.1:2222: a second one says so and exits (1: not a usage error).
    const busy = await cliIn(server, CLI, ['syslog-blacklist', `--config=${tmp.write('busy.conf', SSH)}`]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/syslog udp 127\.0\.0\.1:2222: cannot listen \(EADDRINUSE\)/);
    for (const [flag, re] of [
      ['--priority=nope.loud', /--priority: "nope\.loud" is not FACILITY\.SEVERITY/],
      ['--server=nowhere', /--server: "nowhere" is not HOST:PORT/],
      ['--tag=a b', /--tag: 1 to 48 printable characters/],
    ] as const) {
      const inj = await cliIn(server, CLI, ['syslog-inject', flag]);
      expect(inj.code, flag).toBe(2);
      expect(inj.stderr, flag).toMatch(re);
    }
    await expect(members(server, 'whitelist')).resolves.toEqual(['192.0.2.50', '198.51.100.99']);
  });
});

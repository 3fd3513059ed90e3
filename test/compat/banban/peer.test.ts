import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../../src/core/address.js';
import { traditionalTime } from '../../../src/sources/syslog-parse.js';
import { createLan, type Host, type Lan } from '../../helpers/netns.js';
import { requirements } from '../../helpers/requirements.js';
import { tempDir } from '../tmp.js';
import { CLI, daemon, eventually, repoRoot } from '../vallumd/harness.js';

const execFileP = promisify(execFile);
const ORIGINAL = path.resolve(repoRoot, '../shared/originals/banban/banban');
const req = requirements('banban side by side', [
  'root',
  'netns',
  'cmd:perl',
  'cmd:iptables',
  'cmd:ip6tables',
  'cmd:socat',
  'cmd:conntrack',
  'cmd:unshare',
  'cmd:rsyslogd',
  'cmd:logger',
  `file:${ORIGINAL}`,
  `file:${CLI}`,
]);

const yaml = (socket: string, extra = '') => `socket: ${socket}
goodpatterns:
  - 'sshd\\[[0-9]+\\]: Accepted .+ for .+ from (?<ip>[0-9a-fA-F:\\.]+) port'
ignorenets:
  - 127.0.0.0/8
  - ::1/128
  - 203.0.113.0/24
blocktypes:
  fullblock:
    target: BLOCKER
    minocc: 3
    interval: 3600
    resetconns: 1
    patterns:
      - 'sshd\\[[0-9]+\\]: Failed .+ for .+ from (?<ip>[0-9a-fA-F:\\.]+)'
  immediate:
    target: BLOCKER
    minocc: 1
    interval: 86400
    resetconns: 1
    patterns:
      - 'sshd\\[[0-9]+\\]: Invalid user .* from (?<ip>[0-9a-fA-F:\\.]+)'
  briefthrottle:
    target: THROTTLE
    minocc: 1
    interval: 86400
    resetconns: 0
    patterns:
      - 'sm-mta\\[[0-9]+\\]: ruleset=check_relay, arg1=\\[(?<ip>[0-9a-fA-F:\\.]+)\\],.+reject=421'
  patient:
    target: BLOCKER
    minocc: 12
    interval: 3600
    patterns:
      - 'dovecot: auth failed, rip=(?<ip>[0-9a-fA-F:\\.]+)'
${extra}`;

const failed = (ip: string) => `sshd[101]: Failed password for root from ${ip} port 2222 ssh2`;
const invalid = (ip: string) => `sshd[102]: Invalid user admin from ${ip} port 2222`;
const accepted = (ip: string) => `sshd[103]: Accepted password for alice from ${ip} port 2222 ssh2`;
const throttle = (ip: string) =>
  `sm-mta[104]: ruleset=check_relay, arg1=[${ip}], arg2=127.0.0.4, relay=[${ip}], reject=421 4.3.2 Connection rate limit exceeded.`;
const dovecot = (ip: string) => `dovecot: auth failed, rip=${ip}`;

/** socat style: `<PRI>` + RFC 3164 header; syslog-ng adds a newline; some senders drop `<PRI>`. */
const framed = (msg: string, style: 'pri' | 'syslog-ng' | 'bare' = 'pri') => {
  const head = `${traditionalTime(Date.now())} web1 ${msg}`;
  if (style === 'bare') return Buffer.from(head);
  return Buffer.from(`<38>${head}${style === 'syslog-ng' ? '\n' : ''}`);
};

describe.skipIf(req.skip)('banban: the original Perl script and rampart banban side by side', () => {
  const tmp = tempDir('banban');
  let lan: Lan;
  let orig: Host;
  let ours: Host;
  let original: ReturnType<typeof daemon>;
  let rampart: ReturnType<typeof daemon>;
  const origSock = path.join(tmp.dir, 'orig.sock');
  const ourSock = path.join(tmp.dir, 'ours.sock');
  let ourConfig: string;

  async function send(
    bytes: Buffer,
    hosts: Array<[Host, string]> = [
      [orig, origSock],
      [ours, ourSock],
    ],
  ) {
    for (const [h, sock] of hosts)
      await h.exec('socat', ['-u', 'STDIN', `UNIX-SENDTO:${sock}`], { input: bytes.toString('latin1') });
  }

  async function table(h: Host, name: string): Promise<string[]> {
    const text = await h.exec('cat', [`/proc/net/xt_recent/${name}`]);
    // The kernel prints IPv6 in full (2001:0db8:0000:…): compare canonical forms.
    return [...text.matchAll(/^src=(\S+)/gm)].map((m) => parseTarget(m[1]!).text).sort();
  }

  /** Both have handled everything sent before: a marker block shows up in both, then goes. */
  let n = 0;
  async function sync(via: (msg: string) => Promise<void> = (m) => send(framed(m))): Promise<void> {
    const marker = `198.51.100.${200 + ++n}`;
    await via(invalid(marker));
    for (const h of [orig, ours])
      await eventually(async () => (await table(h, 'BLOCKER')).includes(marker), `marker in ${h.ns}`);
    await send(framed(accepted(marker)));
    for (const h of [orig, ours])
      await eventually(async () => !(await table(h, 'BLOCKER')).includes(marker), `marker gone in ${h.ns}`);
  }

  beforeAll(async () => {
    lan = await createLan(2, 'bban');
    [orig, ours] = lan.hosts as [Host, Host];
    for (const h of [orig, ours]) {
      for (const ipt of ['iptables', 'ip6tables']) {
        await h.exec(ipt, ['-A', 'INPUT', '-m', 'recent', '--name', 'BLOCKER', '--rcheck', '-j', 'DROP']);
        await h.exec(ipt, [
          '-A',
          'INPUT',
          '-m',
          'recent',
          '--name',
          'THROTTLE',
          '--rcheck',
          '--seconds',
          '180',
          '-j',
          'DROP',
        ]);
      }
    }
    // The original reads only /etc/banban.yml: give it one in a private overlay of /etc, seen by
    // nothing but its own mount namespace. Its code is run as it is.
    const upper = path.join(tmp.dir, 'etc-upper');
    const work = path.join(tmp.dir, 'etc-work');
    await mkdir(upper);
    await mkdir(work);
    await writeFile(path.join(upper, 'banban.yml'), yaml(origSock));
    ourConfig = tmp.write('banban.yml', yaml(ourSock));
    original = daemon(orig, 'unshare', [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper},workdir=${work} /etc && exec perl ${ORIGINAL} -f`,
    ]);
    rampart = daemon(ours, process.execPath, [CLI, 'banban', '-f', '--config', ourConfig]);
    await rampart.until(/starting to read from socket/);
    await eventually(
      async () =>
        await orig.exec('test', ['-S', origSock]).then(
          () => true,
          () => false,
        ),
      'original socket',
    );
    await sync();
  }, 120_000);

  afterAll(async () => {
    await original?.stop('SIGKILL');
    await rampart?.stop('SIGKILL');
    await lan?.destroy();
  });

  it('the same datagrams (socat, syslog-ng and bare framing, hostile ones) give the same xt_recent writes', async () => {
    const seq: Buffer[] = [
      ...[1, 2, 3].map(() => framed(failed('192.0.2.1'))),
      ...[1, 2].map(() => framed(failed('192.0.2.2'))),
      framed(invalid('2001:db8::5'), 'syslog-ng'),
      framed(throttle('192.0.2.3')),
      framed(invalid('192.0.2.7')),
      framed(accepted('192.0.2.1')), // unblocks from every target
      framed(failed('192.0.2.4')),
      framed(failed('192.0.2.4')),
      framed(accepted('192.0.2.4')), // forgets the history
      framed(failed('192.0.2.4')),
      framed(failed('192.0.2.4')),
      framed(invalid('203.0.113.9')), // ignored net
      framed(failed('192.0.2.6'), 'bare'),
      framed(failed('192.0.2.6'), 'syslog-ng'),
      framed(failed('192.0.2.6'), 'pri'),
      framed(throttle('192.0.2.8')),
      framed(accepted('192.0.2.8')), // out of THROTTLE too
      Buffer.from('garbage'),
      Buffer.from([0, 1, 2, 0xff, 0xfe]),
      Buffer.from(`<38>${'A'.repeat(5000)}`),
      Buffer.from('<999>not a priority'),
      framed(invalid('999.1.1.1')),
    ];
    for (const d of seq) await send(d);
    await sync();
    expect(original.alive()).toBe(true);
    expect(rampart.alive()).toBe(true);
    for (const t of ['BLOCKER', 'THROTTLE']) expect(await table(ours, t), t).toEqual(await table(orig, t));
    expect(await table(ours, 'BLOCKER')).toEqual(['192.0.2.6', '192.0.2.7', '2001:db8::5']);
    expect(await table(ours, 'THROTTLE')).toEqual(['192.0.2.3']);
  });

  it('lines forwarded by a real rsyslog (omuxsock to both sockets) give the same writes', async () => {
    const inSock = path.join(tmp.dir, 'rsyslog-in.sock');
    const conf = tmp.write(
      'rsyslog.conf',
      `global(workDirectory="${tmp.dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="${inSock}")
$ModLoad omuxsock
$OMUxSockSocket ${origSock}
*.* :omuxsock:
$OMUxSockSocket ${ourSock}
*.* :omuxsock:
`,
    );
    const rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', path.join(tmp.dir, 'rsyslog.pid')], {
      stdio: 'ignore',
    });
    try {
      await eventually(async () => existsSync(inSock), 'rsyslog input socket');
      // What a program on this host logs (sshd[101]: ...) reaches both daemons through rsyslog.
      const log = async (msg: string) => {
        const m = /^([\w-]+)\[(\d+)\]: (.*)$/s.exec(msg)!;
        await execFileP('logger', ['-u', inSock, '-t', m[1]!, `--id=${m[2]}`, m[3]!]);
      };
      for (let i = 0; i < 3; i++) await log(failed('192.0.2.40'));
      await log(invalid('2001:db8::41'));
      await log(throttle('192.0.2.42'));
      await sync(log);
      for (const t of ['BLOCKER', 'THROTTLE']) expect(await table(ours, t), t).toEqual(await table(orig, t));
      expect(await table(ours, 'BLOCKER')).toEqual(expect.arrayContaining(['192.0.2.40', '2001:db8::41']));
      expect(await table(ours, 'THROTTLE')).toContain('192.0.2.42');
    } finally {
      rsyslog.kill();
    }
  });

  it("resetconns drops the blocked address's tracked connections (conntrack -D -s) in both", async () => {
    for (const h of [orig, ours]) {
      await h.exec('conntrack', [
        '-I',
        '-s',
        '192.0.2.77',
        '-d',
        h.v4,
        '-p',
        'tcp',
        '--sport',
        '40000',
        '--dport',
        '22',
        '--state',
        'ESTABLISHED',
        '-t',
        '300',
        '-u',
        'ASSURED',
      ]);
    }
    await send(framed(invalid('192.0.2.77')));
    await sync();
    for (const h of [orig, ours]) {
      const left = await h
        .exec('conntrack', ['-L', '-s', '192.0.2.77'])
        .catch((e: { stdout?: string }) => e.stdout ?? '');
      expect(left, h.ns).not.toContain('192.0.2.77');
    }
  });

  it('differs on purpose: a newline inside a datagram is escaped (#012), not a line end', async () => {
    // The original's `.*` stops at the newline and takes the first address; rampart keeps one
    // datagram one line, as rsyslog does on receive, so the pattern sees all of it.
    await send(framed(invalid('192.0.2.30\nDec  3 10:00:00 web1 sshd[1]: Invalid user x from 192.0.2.31')));
    await sync();
    expect(await table(orig, 'BLOCKER')).toContain('192.0.2.30');
    expect(await table(ours, 'BLOCKER')).toContain('192.0.2.31');
    expect(await table(ours, 'BLOCKER')).not.toContain('192.0.2.30');
  });

  it('differs on purpose: a minocc above 10 fires (the original keeps only 10 hits)', async () => {
    for (let i = 0; i < 12; i++) await send(framed(dovecot('192.0.2.12')));
    await sync();
    expect(await table(ours, 'BLOCKER')).toContain('192.0.2.12');
    expect(await table(orig, 'BLOCKER')).not.toContain('192.0.2.12');
  });

  it("-s simulates: the block is logged and not written; a bad option is banban's usage, exit 255", async () => {
    const simSock = path.join(tmp.dir, 'sim.sock');
    const sim = daemon(ours, process.execPath, [
      CLI,
      'banban',
      '-fs',
      '--config',
      tmp.write('sim.yml', yaml(simSock)),
    ]);
    try {
      await sim.until(/starting to read from socket/);
      await send(framed(invalid('192.0.2.50')), [[ours, simSock]]);
      await sim.until(/"write":"\+192\.0\.2\.50".*simulate: not written/);
      expect(await table(ours, 'BLOCKER')).not.toContain('192.0.2.50');
    } finally {
      await sim.stop();
    }
    const bad = await ours.exec(process.execPath, [CLI, 'banban', '-x']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(bad.code).toBe(255);
    expect(bad.stderr).toContain('Unknown option: x');
    expect(bad.stderr).toContain('-s: simulate only');
  });

  it('SIGHUP reloads the YAML: a new blocktype applies, the running one stays on a broken file', async () => {
    const extra = `  scanner:\n    target: THROTTLE\n    minocc: 1\n    interval: 60\n    patterns:\n      - 'nginx: scan from (?<ip>[0-9a-fA-F:\\.]+)'\n`;
    await writeFile(ourConfig, yaml(ourSock, extra));
    let from = rampart.output().length;
    rampart.child.kill('SIGHUP');
    await rampart.until(/read config/, from);
    await send(framed('nginx: scan from 192.0.2.20'), [[ours, ourSock]]);
    await eventually(
      async () => (await table(ours, 'THROTTLE')).includes('192.0.2.20'),
      'reloaded blocktype',
    );
    await writeFile(ourConfig, 'blocktypes: [not, a, map]\n');
    from = rampart.output().length;
    rampart.child.kill('SIGHUP');
    await rampart.until(/reload failed; keeping the running configuration/, from);
    await send(framed('nginx: scan from 192.0.2.21'), [[ours, ourSock]]);
    await eventually(
      async () => (await table(ours, 'THROTTLE')).includes('192.0.2.21'),
      'old config still runs',
    );
    expect(rampart.alive()).toBe(true);
  });
});

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, lstatSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyslogSource } from '../../src/sources/syslog.js';
import { requirements } from '../helpers/requirements.js';
import { collector, numberProblems, sleep, tempDir, waitFor } from './helpers.js';

const run = promisify(execFile);

function runInput(cmd: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'inherit'] });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
    p.stdin.end(input);
  });
}
/** `logger` to a network listener, as an operator would point it at rampart. */
const logTo = (proto: 'udp' | 'tcp', host: string, port: number | string, ...args: string[]) =>
  run('logger', [`--${proto}`, '--server', host, '--port', String(port), ...args]);

const req = requirements('syslog source', ['cmd:logger', 'cmd:socat', 'cmd:perl']);
const FAIL = 'Failed password for root from 192.0.2.7 port 22 ssh2';

describe.skipIf(req.skip)('syslog source', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let src: SyslogSource | undefined;
  beforeEach(async () => {
    tmp = await tempDir('syslog');
  });
  afterEach(async () => {
    await src?.stop();
    src = undefined;
    await tmp.remove();
  });

  async function listen(
    o: ConstructorParameters<typeof SyslogSource>[0] = { udp: { port: 0 }, tcp: { port: 0 } },
  ) {
    const c = collector();
    src = new SyslogSource(o);
    await src.start(c.push);
    return { c, ...src.addresses() };
  }

  it('logger over UDP, RFC 3164 and RFC 5424: <PRI> removed, 5424 converted with its time', async () => {
    const { c, udp } = await listen();
    const port = String(udp!.port);
    await logTo('udp', '127.0.0.1', port, '--rfc3164', '-t', 'sshd', '-p', 'auth.info', FAIL);
    await logTo('udp', '127.0.0.1', port, '--rfc5424', '-t', 'sshd', '-i', FAIL);
    await waitFor(() => c.lines.length === 2, 'two datagrams');
    const [a, b] = c.lines;
    expect(a!.source).toBe('syslog:udp');
    expect(a!.text).toMatch(new RegExp(`^[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+ sshd: ${FAIL}$`));
    expect(a!.time).toBeUndefined();
    expect(b!.text).toMatch(
      new RegExp(`^[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+ sshd\\[\\d+\\]: ${FAIL}$`),
    );
    expect(Math.abs(b!.time! - Date.now())).toBeLessThan(10_000);
  });

  it('logger over UDP to an IPv6 listener', async () => {
    const { c, udp } = await listen({ udp: { host: '::1', port: 0 } });
    await logTo('udp', '::1', String(udp!.port), '--rfc3164', '-t', 'v6', 'hello');
    await waitFor(() => c.lines.length === 1, 'a datagram over IPv6');
    expect(c.lines[0]!.text).toMatch(/ v6: hello$/);
  });

  it('random binary datagrams over UDP: one line each, nothing throws, the listener keeps working', async () => {
    const { c, udp } = await listen({ udp: { port: 0 } });
    const sock = createSocket('udp4');
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
    for (let i = 0; i < 300; i++) {
      const b = Buffer.alloc(1 + (rnd() % 300));
      for (let j = 0; j < b.length; j++) b[j] = rnd() & 255;
      if (i % 3 === 0) b.write('<13>1 ', 0, 'latin1');
      await new Promise((r) => sock.send(b, udp!.port, '127.0.0.1', r));
    }
    await logTo('udp', '127.0.0.1', udp!.port, '--rfc3164', '-t', 'still', 'alive');
    await waitFor(
      () => c.lines.some((l) => / still: alive$/.test(l.text)),
      'a normal message after the noise',
    );
    sock.close();
    expect(c.lines.length).toBeGreaterThan(250); // UDP may drop a few on a loaded machine
    expect(c.lines.every((l) => !/[\n\r\0]/.test(l.text))).toBe(true);
  });

  it('logger over TCP with newline and with octet-counted framing', async () => {
    const { c, tcp } = await listen();
    const port = String(tcp!.port);
    await logTo('tcp', '127.0.0.1', port, '--rfc3164', '-t', 'nl', 'first\tmsg');
    await logTo('tcp', '127.0.0.1', port, '--octet-count', '-t', 'oc', 'second msg');
    await waitFor(() => c.lines.length === 2, 'two TCP messages');
    expect(c.lines[0]!.text).toMatch(/ nl: first\tmsg$/);
    expect(c.lines[1]!.text).toMatch(/ oc: second msg$/);
    expect(c.lines.every((l) => l.source === 'syslog:tcp')).toBe(true);
  });

  it('many TCP connections at once (socat), each with many messages: all arrive once', async () => {
    const { c, tcp } = await listen();
    const conns = 20;
    const per = 50;
    await Promise.all(
      Array.from({ length: conns }, (_, k) => {
        const body = Array.from(
          { length: per },
          (_, i) => `<13>Nov 21 10:00:00 h t[1]: m ${k * per + i + 1}\n`,
        ).join('');
        return run('sh', ['-c', `printf '%s' "$1" | socat -u STDIN TCP:127.0.0.1:${tcp!.port}`, 'sh', body]);
      }),
    );
    await waitFor(() => c.lines.length >= conns * per, 'all TCP messages');
    expect(numberProblems(c.texts(), 'm', conns * per)).toEqual([]);
  });

  it('TCP connections beyond maxConnections are refused; the admitted ones keep working', async () => {
    const { c, tcp } = await listen({ tcp: { port: 0, maxConnections: 2 } });
    const open = async () => {
      const s = connect(tcp!.port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      return s;
    };
    const a = await open();
    const b = await open();
    await sleep(100); // the server has counted both
    const extra = await open();
    await new Promise((r) => extra.once('close', r));
    a.end('<13>h t: from a\n');
    b.end('<13>h t: from b\n');
    await waitFor(() => c.lines.length === 2, 'both admitted connections');
    expect(c.texts().sort()).toEqual(['h t: from a', 'h t: from b']);
  });

  it('a hostile TCP sender: huge frames are cut, binary bytes decoded, later frames intact', async () => {
    const { c, tcp } = await listen({ tcp: { port: 0 }, maxMessageBytes: 1000 });
    const s = connect(tcp!.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write(`999999 <13>${'A'.repeat(5000)}`);
    s.write(
      Buffer.concat([
        Buffer.from(`${'B'.repeat(994995)}`),
        Buffer.from('\n<13>h t: bin \xff\xfe\x00ok\n', 'latin1'),
      ]),
    );
    s.write('<13>h t: after\n');
    s.end();
    await waitFor(() => c.lines.length === 3, 'three frames');
    expect(c.lines[0]!.text).toHaveLength(1000 - 4);
    expect(c.lines[1]!.text).toBe('h t: bin \ufffd\ufffd#000ok');
    expect(c.lines[2]!.text).toBe('h t: after');
    expect(src!.truncated).toBe(1);
  });

  it('UNIX datagram socket: created with its mode, logger -u arrives one datagram = one line, removed on stop', async () => {
    const path = tmp.path('banban.sock');
    const { c } = await listen({ unix: { path, mode: 0o660 } });
    expect(lstatSync(path).isSocket()).toBe(true);
    expect(lstatSync(path).mode & 0o777).toBe(0o660);
    await run('logger', ['-u', path, '--socket-errors=on', '-t', 'sshd', '-p', 'auth.warning', FAIL]);
    // Two lines in one datagram stay one line: the embedded newline is escaped, not split.
    await runInput('socat', ['-u', 'STDIN', `UNIX-SENDTO:${path}`], '<38>Nov 21 10:00:00 h x: a\nb');
    await waitFor(() => c.lines.length === 2, 'two datagrams');
    expect(c.lines[0]!.text).toMatch(new RegExp(` ${hostname()} sshd: ${FAIL}$`));
    expect(c.lines[0]!.source).toBe('syslog:unix');
    expect(c.lines[1]!.text).toBe('Nov 21 10:00:00 h x: a#012b');
    await src!.stop();
    expect(existsSync(path)).toBe(false);
  });

  it('UNIX socket: a stale socket file is replaced; a live one or a regular file is refused clearly', async () => {
    const path = tmp.path('s.sock');
    // A stale socket: socat bound it and was killed without cleaning up.
    const socat = spawn('socat', ['-u', `UNIX-RECV:${path}`, 'STDOUT'], { stdio: 'ignore' });
    await waitFor(() => existsSync(path), 'socat socket');
    socat.kill('SIGKILL');
    await new Promise((r) => socat.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const { c } = await listen({ unix: { path } });
    await run('logger', ['-u', path, '-t', 't', 'works']);
    await waitFor(() => c.lines.length === 1, 'a datagram on the replaced socket');
    // Now it is live: a second listener must not steal it.
    const second = new SyslogSource({ unix: { path } });
    await expect(second.start(() => {})).rejects.toThrow(/s\.sock: in use/);
    expect(lstatSync(path).isSocket()).toBe(true);
    const file = tmp.path('plain');
    writeFileSync(file, 'keep me');
    await expect(new SyslogSource({ unix: { path: file } }).start(() => {})).rejects.toThrow(
      /plain: exists and is not a socket/,
    );
    expect(existsSync(file)).toBe(true);
  });

  it('a port in use is one clear error', async () => {
    const { udp } = await listen({ udp: { port: 0 } });
    await expect(new SyslogSource({ udp: { port: udp!.port } }).start(() => {})).rejects.toThrow(
      new RegExp(`syslog udp 127.0.0.1:${udp!.port}: cannot listen \\(EADDRINUSE\\)`),
    );
  });

  describe.skipIf(requirements('syslog source with rsyslogd', ['cmd:rsyslogd']).skip)(
    'with a real rsyslogd',
    () => {
      let rsyslog: ChildProcess | undefined;
      afterEach(async () => {
        if (rsyslog && rsyslog.exitCode === null) {
          const exited = new Promise((r) => rsyslog!.once('exit', r));
          rsyslog.kill('SIGTERM');
          await exited;
        }
      });

      it('rsyslogd forwards by omfwd UDP, omfwd TCP (octet-counted and traditional) and omuxsock: the same line each time', async () => {
        const out = tmp.path('out.sock');
        const { c, udp, tcp } = await listen({ udp: { port: 0 }, tcp: { port: 0 }, unix: { path: out } });
        const conf = tmp.path('rsyslog.conf');
        writeFileSync(
          conf,
          [
            `global(workDirectory="${tmp.dir}")`,
            'module(load="imuxsock" SysSock.Use="off")',
            `input(type="imuxsock" Socket="${tmp.path('in.sock')}")`,
            'module(load="omuxsock")',
            `$OMUxSockSocket ${out}`,
            '*.* :omuxsock:',
            `*.* action(type="omfwd" target="127.0.0.1" port="${udp!.port}" protocol="udp")`,
            `*.* action(type="omfwd" target="127.0.0.1" port="${tcp!.port}" protocol="tcp" TCP_Framing="octet-counted")`,
            `*.* action(type="omfwd" target="127.0.0.1" port="${tcp!.port}" protocol="tcp" TCP_Framing="traditional")`,
            '',
          ].join('\n'),
        );
        rsyslog = spawn('rsyslogd', ['-n', '-f', conf, '-i', tmp.path('rsyslogd.pid')], { stdio: 'ignore' });
        await waitFor(() => existsSync(tmp.path('in.sock')), 'rsyslogd input socket');
        await run('logger', ['-u', tmp.path('in.sock'), '-t', 'sshd', '-p', 'auth.info', FAIL]);
        await waitFor(() => c.lines.length >= 4, 'the message on all four inputs');
        await sleep(200);
        expect(c.lines.map((l) => l.source).sort()).toEqual([
          'syslog:tcp',
          'syslog:tcp',
          'syslog:udp',
          'syslog:unix',
        ]);
        const texts = new Set(c.texts());
        expect(texts.size).toBe(1);
        expect([...texts][0]).toMatch(
          new RegExp(`^[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\S+ sshd: ${FAIL}$`),
        );
      });
    },
  );
});

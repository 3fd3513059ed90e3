import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';
import { tempDir } from './tmp.js';

const MAIN = resolve('dist/cli/main.js');
const req = requirements('f2b-zmq and net2ban CLI', [`file:${MAIN}`]);
const tmp = tempDir('compatcli');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 30_000 });

const N2B = `[global]
server = 127.0.0.1
rounds = 1000
secret = s
mode = server
valid_wtime = 3600
authkey = a
queue_prefix = net2ban_
[server]
input = input_net2ban
key = sk
[keygen]
keylen = 12
[web1]
key = k1
[web2]
key = k2
`;

describe.skipIf(req.skip)('rampart f2b-zmq / net2ban / net2banctl (node dist/cli/main.js)', () => {
  it('net2banctl prints what the original printed', () => {
    const cfg = tmp.write('net2ban.cfg', N2B);
    expect(cli('net2banctl', 'list_clients', '--config', cfg)).toMatchObject({
      status: 0,
      stdout: 'web1\nweb2\n',
    });
    const gc = cli('net2banctl', 'get_client', 'web2', '--config', cfg);
    expect(gc.status).toBe(0);
    expect(gc.stdout).toContain('[global]\nserver = 127.0.0.1\nrounds = 1000\nsecret = s\nmode = client\n');
    expect(gc.stdout).toContain('[web2]\nkey = k2\n\n');
    expect(gc.stdout).not.toContain('[server]');
    expect(cli('net2banctl', 'get_client', 'nobody', '--config', cfg)).toMatchObject({
      status: 1,
      stdout: 'Client not found: nobody\n',
    });
    expect(cli('net2banctl', 'gen_random', '--config', cfg).stdout).toMatch(/^[0-9a-f]{12}\n$/);
  });

  it('bad input is one line and exit code 2, never a stack trace', () => {
    const cfg = tmp.write('n.cfg', N2B);
    for (const [args, msg] of [
      [['net2banctl', 'bogus', '--config', cfg], /invalid parameters for "bogus"/],
      [['net2banctl', 'exec', 'x', 'actionban', 'ip', '--config', cfg], /"ip" is not NAME=VALUE/],
      [['net2banctl', 'exec', '../x', 'actionban', '--config', cfg], /"\.\.\/x" is not an action file name/],
      [
        ['net2ban', '--config', tmp.write('m.cfg', N2B.replace('mode = server', 'mode = both'))],
        /m\.cfg:5: mode/,
      ],
      [['f2b-zmq', 'nope'], /unknown role "nope"/],
      [
        ['f2b-zmq', 'monitor', '--config', tmp.write('c.conf', '[monitor]\nauth = false\n')],
        /c\.conf: zmqreplyserver/,
      ],
    ] as const) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('f2b-zmq publisher runs in the foreground and stops cleanly on SIGTERM', async () => {
    const conf = tmp.write(
      'cluster.conf',
      '[publisher]\nbroadcasterbindurl = tcp://127.0.0.1:*   # a comment the original would choke on\nreplybindurl = tcp://127.0.0.1:*\nauth = true\nauthtoken = t\n',
    );
    const p = spawn(process.execPath, [MAIN, 'f2b-zmq', 'publisher', '--config', conf], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    const listening = new Promise<void>((r) =>
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('f2b-zmq publisher listening')) r();
      }),
    );
    await listening;
    expect(err).toContain('ignoring the text after');
    const code = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    p.kill('SIGTERM');
    expect(await code).toBe(0);
  });
});

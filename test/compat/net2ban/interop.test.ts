import { execFile } from 'node:child_process';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompatMetrics } from '../../../src/compat/metrics.js';
import { loadNet2banConfig, type Net2banConfig } from '../../../src/compat/net2ban/config.js';
import { sealBody, sessionKey } from '../../../src/compat/net2ban/crypto.js';
import { execCommand, getClient, sendToServer, updateCommand } from '../../../src/compat/net2ban/ctl.js';
import { startClient, startServer } from '../../../src/compat/net2ban/daemon.js';
import { encodeCommand } from '../../../src/compat/net2ban/message.js';
import { lineLogger, silentLogger } from '../../../src/core/logger.js';
import { createVhost, type RabbitVhost } from '../../helpers/rabbitmq.js';
import { requirements } from '../../helpers/requirements.js';
import { waitFor } from '../../sources/helpers.js';

const run = promisify(execFile);
const PEER = resolve(import.meta.dirname, 'peer.py');
const SECRET = '57bae6f17927fee0309cd0fcf900903d0bf49277';
const AUTH = 'fe64809ba0286c72123d15ffb3554f261ef835d0';

const req = requirements('net2ban against RabbitMQ and an independent peer', [
  'tcp:5672',
  'cmd:rabbitmqctl',
  'cmd:/usr/bin/python3',
]);

describe.skipIf(req.skip)('net2ban over a real RabbitMQ with an independent Python peer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-n2b-'));
  let mq: RabbitVhost;
  let serverCfg: Net2banConfig;
  const clientCfg: Record<string, string> = {};
  const out = (name: string) => join(dir, `${name}.out`);
  const lines = (name: string) =>
    existsSync(out(name)) ? readFileSync(out(name), 'utf8').trim().split('\n') : [];
  const amqp = () =>
    JSON.stringify({ host: mq.host, port: mq.port, vhost: mq.vhost, user: mq.user, password: mq.password });
  const peer = (...args: string[]) => run('/usr/bin/python3', [PEER, ...args], { timeout: 60_000 });

  beforeAll(async () => {
    mq = await createVhost('n2b');
    const cfgText = `[global]
server = 127.0.0.1
port = ${mq.port}
vhost = ${mq.vhost}
user = ${mq.user}
password = ${mq.password}
rounds = 1000
secret = ${SECRET}
mode = server
valid_wtime = 3600
authkey = ${AUTH}
queue_prefix = n2b_

[server]
input = input_n2b
key = the-server-key

[keygen]
keylen = 40

[web1]
key = k1

[web2]
key = k2
`;
    const file = join(dir, 'net2ban.cfg');
    writeFileSync(file, cfgText);
    serverCfg = loadNet2banConfig(file);
    for (const name of ['web1', 'web2']) {
      // Each client's file is what `net2banctl get_client` prints, as the original's README says.
      const d = join(dir, name);
      mkdirSync(join(d, 'actions'), { recursive: true });
      writeFileSync(join(d, 'net2ban.cfg'), getClient(serverCfg, name)!);
      writeFileSync(
        join(d, 'actions', 'mark.conf'),
        `[Definition]\nactionban = echo ban <ip> <name> >> <out>\nactionunban = echo unban <ip> >> <out>\n[Init]\nout = ${out(name)}\nname = default\n`,
      );
      clientCfg[name] = join(d, 'net2ban.cfg');
    }
  });
  afterAll(async () => {
    await mq?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (name: string, log = silentLogger(), metrics = new CompatMetrics()) => {
    const cfg = loadNet2banConfig(clientCfg[name]);
    const c = startClient({ config: cfg, actionsDir: join(dir, name, 'actions'), log, metrics });
    return Object.assign(c, { metrics });
  };
  const server = (metrics = new CompatMetrics(), log = silentLogger()) =>
    Object.assign(startServer({ config: serverCfg, actionsDir: dir, log, metrics }), { metrics });

  it('peer → rampart server → rampart clients; a client stopped while messages are sent gets them all, in order', async () => {
    const srv = server();
    const web1 = client('web1');
    let web2 = client('web2');
    await Promise.all([srv.link.up(), web1.link.up(), web2.link.up()]);
    await web2.close();
    const now = Date.now() / 1000;
    const batch = [1, 2, 3, 4, 5].map((n) =>
      JSON.stringify({
        cmd: 'exec',
        file: 'mark',
        action: 'actionban',
        params: { ip: `192.0.2.${n}`, name: n === 3 ? '$(touch PWNED)' : `jail${n}` },
        timestamp: now,
      }),
    );
    writeFileSync(join(dir, 'batch.jsonl'), `${batch.join('\n')}\n`);
    await peer(
      'send',
      amqp(),
      'input_n2b',
      'the-server-key',
      SECRET,
      '1000',
      AUTH,
      `@${join(dir, 'batch.jsonl')}`,
    );
    const want = [
      'ban 192.0.2.1 jail1',
      'ban 192.0.2.2 jail2',
      'ban 192.0.2.3 $(touch PWNED)',
      'ban 192.0.2.4 jail4',
      'ban 192.0.2.5 jail5',
    ];
    await waitFor(() => lines('web1').length === 5, 'web1 applied five', 30_000);
    expect(lines('web1')).toEqual(want);
    web2 = client('web2');
    await waitFor(() => lines('web2').length === 5, 'web2 caught up', 30_000);
    expect(lines('web2')).toEqual(want);
    // The value stayed data: no shell ran it.
    expect(existsSync(join(process.cwd(), 'PWNED')) || existsSync(join(dir, 'PWNED'))).toBe(false);
    await Promise.all([srv.close(), web1.close(), web2.close()]);
    {
      const conn = await connect({
        hostname: mq.host,
        port: mq.port,
        vhost: mq.vhost,
        username: mq.user,
        password: mq.password,
      });
      const ch = await conn.createChannel();
      // Every message was acknowledged before the daemons hung up: nothing waits to run twice.
      for (const q of ['input_n2b', 'n2b_web1', 'n2b_web2'])
        expect((await ch.checkQueue(q)).messageCount, q).toBe(0);
      await conn.close();
    }
  });

  it('rampart net2banctl → the peer opens it with the server key; rampart server → the peer opens it with a client key', async () => {
    await sendToServer(serverCfg, execCommand('mark', 'actionunban', ['ip=2001:db8::1', 'note=a=b']));
    const { stdout } = await peer('recv', amqp(), 'input_n2b', 'the-server-key', SECRET, '1000', AUTH, '1');
    const got = JSON.parse(stdout.trim()) as { ok: boolean; plain: Record<string, unknown> };
    expect(got.ok).toBe(true);
    expect(got.plain).toMatchObject({
      cmd: 'exec',
      file: 'mark',
      action: 'actionunban',
      params: { ip: '2001:db8::1', note: 'a=b' },
    });
    expect(Math.abs((got.plain.timestamp as number) - Date.now() / 1000)).toBeLessThan(600);

    // update for web2 only: the server re-encrypts it for web2's queue and no other.
    const srv = server();
    await srv.link.up();
    const file = join(dir, 'newaction.conf');
    writeFileSync(file, '[Definition]\nactionban = true # a comment\n');
    await sendToServer(serverCfg, updateCommand('web2', file));
    const r = await peer('recv', amqp(), 'n2b_web2', 'k2', SECRET, '1000', AUTH, '1');
    const upd = JSON.parse(r.stdout.trim()) as { plain: { cmd: string; file: string; content: string } };
    expect(upd.plain).toMatchObject({ cmd: 'update', file: 'newaction', client: 'web2' });
    expect(Buffer.from(upd.plain.content, 'base64').toString()).toBe('[Definition]\nactionban = true\n');
    // An update for a client the server does not know: refused, counted, and the server goes on.
    await sendToServer(serverCfg, updateCommand('ghost', file));
    for (let i = 0; i < 400 && (await srv.metrics.droppedCount('net2ban', 'unknown-client')) === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await srv.metrics.droppedCount('net2ban', 'unknown-client')).toBe(1);
    await srv.close();
    const conn = await connect({
      hostname: mq.host,
      port: mq.port,
      vhost: mq.vhost,
      username: mq.user,
      password: mq.password,
    });
    const ch = await conn.createChannel();
    expect((await ch.checkQueue('n2b_web1')).messageCount).toBe(0);
    await conn.close();
  });

  it('bad input: one log line and one counter per refusal, the client keeps going, nothing applied is lost', async () => {
    const logged: Array<{ msg: string; reason?: string; level: number }> = [];
    const log = lineLogger((s: string) => logged.push(JSON.parse(s)));
    const web1 = client('web1', log);
    await web1.link.up();
    const key = sessionKey('k1', SECRET, 1000);
    const cmd = (o: Record<string, unknown>) =>
      encodeCommand({
        cmd: 'exec',
        file: 'mark',
        action: 'actionban',
        params: { ip: '198.51.100.1' },
        timestamp: Date.now() / 1000,
        ...o,
      } as never);
    const badPad = (() => {
      const iv = randomBytes(16);
      const c = createCipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
      const body = Buffer.concat([iv, c.update(Buffer.alloc(16, 0x20)), c.final()]);
      return Buffer.concat([body, Buffer.from(createHmac('sha256', AUTH).update(body).digest('hex'))]);
    })();
    const good = sealBody(cmd({ params: { ip: '203.0.113.9', name: 'last' } }), key, AUTH);
    const hostile: Array<[string, Buffer]> = [
      ['truncated', randomBytes(50)],
      ['bad-hmac', sealBody(cmd({}), key, 'wrong-auth-key')],
      ['bad-padding', badPad],
      ['bad-json', sealBody(Buffer.from('{"cmd": "exec",'), key, AUTH)],
      [
        'missing-field',
        sealBody(Buffer.from(`{"cmd":"exec","file":"mark","timestamp":${Date.now() / 1000}}`), key, AUTH),
      ],
      ['expired', sealBody(cmd({ timestamp: Date.now() / 1000 - 7200 }), key, AUTH)],
      ['future', sealBody(cmd({ timestamp: Date.now() / 1000 + 7200 }), key, AUTH)],
      ['bad-ip', sealBody(cmd({ params: { ip: '198.51.100.1`id`' } }), key, AUTH)],
      ['action-failed', sealBody(cmd({ file: 'absent' }), key, AUTH)],
      ['good', good],
      ['replay', good],
    ];
    const conn = await connect({
      hostname: mq.host,
      port: mq.port,
      vhost: mq.vhost,
      username: mq.user,
      password: mq.password,
    });
    const ch = await conn.createConfirmChannel();
    for (const [, body] of hostile) ch.sendToQueue('n2b_web1', body, { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    const before = lines('web1').length;
    await waitFor(
      () => logged.filter((l) => l.reason === 'replay').length === 1,
      'the replay refused',
      30_000,
    );
    for (const [reason] of hostile.filter(([r]) => r !== 'good')) {
      expect(await web1.metrics.droppedCount('net2ban', reason), reason).toBe(1);
    }
    const refusals = logged.filter(
      (l) => l.level >= 40 && l.msg.startsWith('net2ban client: message dropped'),
    );
    expect(refusals.map((l) => l.reason)).toEqual(
      hostile.map(([r]) => r).filter((r) => r !== 'good' && r !== 'action-failed'),
    );
    // Only the good one ran, once, after all the bad ones.
    expect(lines('web1').slice(before)).toEqual(['ban 203.0.113.9 last']);
    await web1.close();
  });
});

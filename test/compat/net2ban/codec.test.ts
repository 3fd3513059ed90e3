import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadNet2banConfig } from '../../../src/compat/net2ban/config.js';
import { openBody, sealBody, sessionKey } from '../../../src/compat/net2ban/crypto.js';
import { getClient, listClients, updateCommand } from '../../../src/compat/net2ban/ctl.js';
import { encodeCommand, parseCommand } from '../../../src/compat/net2ban/message.js';
import { ConfigError } from '../../../src/core/errors.js';
import { tempDir } from '../tmp.js';

const tmp = tempDir('n2bcodec');
const KEY = sessionKey('key1', '57bae6f17927fee0309cd0fcf900903d0bf49277', 12000);
const AUTH = 'fe64809ba0286c72123d15ffb3554f261ef835d0';

/** A body with a valid HMAC over whatever ciphertext we choose (for padding attacks). */
function forge(paddedPlain: Buffer): Buffer {
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', KEY, iv).setAutoPadding(false);
  const body = Buffer.concat([iv, c.update(paddedPlain), c.final()]);
  return Buffer.concat([body, Buffer.from(createHmac('sha256', AUTH).update(body).digest('hex'))]);
}

describe('net2ban framing', () => {
  it('derives the INTEROP test vector key', () => {
    expect(KEY.toString('ascii')).toBe('PVjn4UYlQ0BvctuKTGeh1TtSQioZRAlP');
  });

  it('opens what it seals, and refuses every damaged body with its reason', () => {
    const plain = Buffer.from('{"cmd":"exec"}');
    const body = sealBody(plain, KEY, AUTH);
    expect(body.length).toBe(16 + 16 + 64);
    const opened = openBody(body, KEY, AUTH);
    expect(opened.ok && opened.plain.toString()).toBe('{"cmd":"exec"}');
    const flip = Buffer.from(body);
    flip[20] = flip[20]! ^ 1;
    expect(openBody(flip, KEY, AUTH)).toEqual({ ok: false, reason: 'bad-hmac' });
    const upper = Buffer.concat([
      body.subarray(0, 32),
      Buffer.from(body.subarray(32).toString().toUpperCase()),
    ]);
    expect(openBody(upper, KEY, AUTH)).toEqual({ ok: false, reason: 'bad-hmac' });
    expect(openBody(body, KEY, 'other')).toEqual({ ok: false, reason: 'bad-hmac' });
    expect(openBody(body.subarray(0, body.length - 1), KEY, AUTH)).toEqual({
      ok: false,
      reason: 'truncated',
    });
    expect(openBody(Buffer.alloc(0), KEY, AUTH)).toEqual({ ok: false, reason: 'truncated' });
    expect(openBody(body.subarray(16), KEY, AUTH)).toEqual({ ok: false, reason: 'truncated' });
    // Valid HMAC, broken PKCS#7: a zero pad byte, a pad longer than a block, inconsistent bytes.
    for (const tail of [[0], [17], [3, 3, 2]]) {
      const block = Buffer.alloc(16, 0x41);
      Buffer.from(tail).copy(block, 16 - tail.length);
      expect(openBody(forge(block), KEY, AUTH), String(tail)).toEqual({ ok: false, reason: 'bad-padding' });
    }
    const full = Buffer.concat([Buffer.from('0123456789abcdef'), Buffer.alloc(16, 16)]);
    const ok = openBody(forge(full), KEY, AUTH);
    expect(ok.ok && ok.plain.toString()).toBe('0123456789abcdef');
  });

  it('checks every command: fields, names, the time window, a future timestamp', () => {
    const now = 1_800_000_000_000;
    const at = (t: number) => now / 1000 + t;
    const p = (o: unknown) => parseCommand(Buffer.from(JSON.stringify(o)), { validWtime: 3600, now });
    const exec = {
      cmd: 'exec',
      file: 'iptables-multiport',
      action: 'actionban',
      params: { ip: '192.0.2.1' },
    };
    expect(p({ ...exec, timestamp: at(-10) })).toMatchObject({
      ok: true,
      command: { file: 'iptables-multiport' },
    });
    expect(p({ ...exec, timestamp: at(-3601) })).toMatchObject({ ok: false, reason: 'expired' });
    expect(p({ ...exec, timestamp: at(3600) })).toMatchObject({ ok: false, reason: 'future' });
    expect(p({ ...exec, timestamp: String(at(0)) })).toMatchObject({ ok: false, reason: 'bad-field' });
    expect(p({ cmd: 'exec', file: 'x', timestamp: at(0) })).toMatchObject({
      ok: false,
      reason: 'missing-field',
    });
    expect(p({ ...exec, file: '../../etc/cron.d/x', timestamp: at(0) })).toMatchObject({
      ok: true,
      command: { file: 'etccrondx' },
    });
    expect(p({ ...exec, file: 'a b', timestamp: at(0) })).toMatchObject({ ok: false, reason: 'bad-file' });
    expect(p({ ...exec, params: { ip: '192.0.2.1; id' }, timestamp: at(0) })).toMatchObject({
      reason: 'bad-ip',
    });
    expect(p({ ...exec, params: { 'a b': 'x' }, timestamp: at(0) })).toMatchObject({ reason: 'bad-field' });
    expect(p({ ...exec, action: 'x;y', timestamp: at(0) })).toMatchObject({ reason: 'bad-field' });
    expect(p({ cmd: 'update', file: 'f', client: 'c', content: '***', timestamp: at(0) })).toMatchObject({
      reason: 'bad-field',
    });
    expect(parseCommand(Buffer.from('{"cmd":'), { validWtime: 1 })).toMatchObject({ reason: 'bad-json' });
    expect(parseCommand(Buffer.from([0xff, 0xfe]), { validWtime: 1 })).toMatchObject({ reason: 'bad-json' });
    expect(parseCommand(Buffer.from('[1]'), { validWtime: 1 })).toMatchObject({ reason: 'bad-json' });
    // Non-ASCII is escaped as the original's encoder did: pad length = byte length.
    expect(encodeCommand({ ...exec, params: { name: 'é' }, timestamp: 1 } as never).toString()).toContain(
      '\\u00e9',
    );
  });

  it('keeps a tag named __proto__ as a tag, not as the prototype', () => {
    // Found by test/fuzz/wire.test.ts: `params[k] = v` with k "__proto__" dropped the tag.
    const now = 1_700_000_000_000;
    const plain = Buffer.from(
      `{"cmd":"exec","file":"f","action":"ban","params":{"__proto__":"x","ip":"192.0.2.1"},"timestamp":${now / 1000}}`,
    );
    const r = parseCommand(plain, { validWtime: 60, now });
    expect(r.ok && Object.entries(r.command.cmd === 'exec' ? r.command.params : {})).toEqual([
      ['__proto__', 'x'],
      ['ip', '192.0.2.1'],
    ]);
    if (r.ok)
      expect(Object.getPrototypeOf(r.command.cmd === 'exec' ? r.command.params : {})).toBe(Object.prototype);
  });
});

const CFG = `[global]
server = 127.0.0.1
rounds = 12000
secret = 57bae6f17927fee0309cd0fcf900903d0bf49277
mode = server
valid_wtime = 3600
auth_key = ${AUTH}
queue_prefix = Net2Ban_

[server]
input = Input_Net2ban
key = 1e3648858a30a105374c1a8a7f05e4fc0dff2abc
rounds = 1000

[keygen]
keylen = 40

[client1]
key = key1

[client2]
key = key2
secret = other ; an inline comment, as Python 2's ConfigParser strips it
`;

describe('net2ban.cfg and net2banctl', () => {
  it('reads the file as the original did, with its per-peer overrides', () => {
    const cfg = loadNet2banConfig(tmp.write('net2ban.cfg', CFG));
    expect(cfg.mode).toBe('server');
    expect(cfg.queuePrefix).toBe('net2ban_');
    expect(cfg.server?.input).toBe('input_net2ban');
    expect(cfg.server?.peer).toMatchObject({ rounds: 1000, authKey: AUTH });
    // [server]'s rounds do not leak into the clients (they did in the original).
    expect(cfg.clients).toMatchObject([
      { name: 'client1', key: 'key1', rounds: 12000, secret: '57bae6f17927fee0309cd0fcf900903d0bf49277' },
      { name: 'client2', key: 'key2', secret: 'other' },
    ]);
    expect(cfg.broker).toMatchObject({
      host: '127.0.0.1',
      port: 5672,
      vhost: '/',
      user: 'guest',
      tls: false,
    });
    expect(listClients(cfg)).toEqual(['client1', 'client2']);
    expect(getClient(cfg, 'client1')).toBe(
      `[global]\nserver = 127.0.0.1\nrounds = 12000\nsecret = 57bae6f17927fee0309cd0fcf900903d0bf49277\nmode = client\nvalid_wtime = 3600\nauth_key = ${AUTH}\nqueue_prefix = Net2Ban_\n\n[keygen]\nkeylen = 40\n\n[client1]\nkey = key1\n\n`,
    );
    expect(getClient(cfg, 'nobody')).toBeUndefined();
  });

  it('refuses a broken file with file, line and key', () => {
    const err = (text: string) => {
      try {
        loadNet2banConfig(tmp.write('bad.cfg', text));
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      return 'no error';
    };
    expect(err(CFG.replace('rounds = 12000', 'rounds = many'))).toMatch(
      /bad\.cfg:3: rounds: "many" must be a whole number/,
    );
    expect(err(CFG.replace('mode = server', 'mode = both'))).toMatch(
      /bad\.cfg:5: mode: mode must be server or client/,
    );
    expect(err(CFG.replace('mode = server', 'mode = client'))).toMatch(
      /exactly one client section \(found 2/,
    );
    expect(err('[server]\ninput = x\n')).toMatch(/no \[global\] section/);
  });

  it('update ships the file with comments stripped and a clean name, as net2banctl did', () => {
    const path = tmp.write(
      'iptables-multiport.conf',
      '# head\n[Definition]\nactionban = iptables -I f2b 1 -s <ip> -j DROP   # drop it\n\n  \n',
    );
    const c = updateCommand('client1', path, 1_000);
    expect(c).toMatchObject({ cmd: 'update', file: 'iptables-multiport', client: 'client1', timestamp: 1 });
    expect(Buffer.from((c as { content: string }).content, 'base64').toString()).toBe(
      '[Definition]\nactionban = iptables -I f2b 1 -s <ip> -j DROP\n',
    );
  });
});

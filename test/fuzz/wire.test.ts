import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBroadcast,
  checkRequest,
  encodeRequest,
  validHostname,
  validJail,
} from '../../src/compat/fail2ban-zmq-tools/frame.js';
import { openBody, sealBody, sessionKey } from '../../src/compat/net2ban/crypto.js';
import { encodeCommand, type Net2banCommand, parseCommand } from '../../src/compat/net2ban/message.js';
import { formatTopic, parsePayload, parseTopic } from '../../src/compat/vallumd/codec.js';
import { parseTarget } from '../../src/core/address.js';
import { docAddress, family, mutated, textFrom, timeout } from './harness.js';

// The seed tools' wire formats: vallumd topics and payloads, fail2ban-zmq-tools frames, net2ban's
// encrypted commands. Round trips where the format has an encoder; hostile bytes everywhere.
const f = family('wire');

const NOW = 1_700_000_000_000;
const key = sessionKey('peer-key', 'fleet-secret', 1000);
const authKey = 'auth-key';

const label = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?$/);
const hostname = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'));
const jail = fc.stringMatching(/^[A-Za-z0-9_-]{0,20}$/);
const action = fc.constantFrom('Ban', 'Unban', 'UnBan', 'ban', 'BAN');
const token = fc.stringMatching(/^[A-Za-z0-9-]{1,36}$/);

const command: fc.Arbitrary<Net2banCommand> = fc.oneof(
  fc.record({
    cmd: fc.constant('exec' as const),
    file: fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/),
    action: fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,20}$/),
    // A tag named ip must be an address (parseCommand refuses it otherwise: 'bad-ip').
    params: fc
      .tuple(
        fc.dictionary(
          fc.stringMatching(/^[A-Za-z0-9_-]{1,10}$/).filter((k) => k !== 'ip'),
          fc.string({ maxLength: 40 }),
          {
            maxKeys: 4,
          },
        ),
        fc.option(docAddress),
      )
      .map(([p, ip]) => (ip === null ? p : { ...p, ip })),
    timestamp: fc.integer({ min: NOW / 1000 - 50, max: NOW / 1000 }),
  }),
  fc.record({
    cmd: fc.constant('update' as const),
    file: fc.stringMatching(/^[A-Za-z0-9_-]{1,30}$/),
    content: fc.uint8Array({ maxLength: 60 }).map((u) => Buffer.from(u).toString('base64')),
    client: fc.string({ maxLength: 20 }),
    timestamp: fc.integer({ min: NOW / 1000 - 50, max: NOW / 1000 }),
  }),
);

describe('fuzz: seed tools wire formats', () => {
  it(
    'vallumd: topics round-trip through formatTopic; payloads are an address only where inet_pton agrees',
    () => {
      const payload = fc.oneof(
        docAddress.map((a) => Buffer.from(a)),
        fc.uint8Array({ maxLength: 50 }).map((u) => Buffer.from(u)),
        textFrom('0123456789abcdefABCDEF:.%/ \0\n', 46).map((s) => Buffer.from(s, 'latin1')),
      );
      f.prop(
        'vallumd',
        fc.tuple(textFrom('ab/+#delADD', 20), payload),
        ([topic, p]) => {
          const t = parseTopic(topic);
          if (t && topic.includes('/')) expect(formatTopic(t.set, t.action)).toBe(topic);
          const r = parsePayload(p);
          const text = p.toString('latin1');
          const printable = p.every((b) => b > 0x20 && b < 0x7f);
          const want =
            printable && !text.includes('%') && (text.includes('.') ? isIP(text) === 4 : isIP(text) === 6);
          if (p.length === 0) expect(r.kind).toBe('empty');
          else expect(r.kind).toBe(want ? 'address' : 'invalid');
          if (r.kind === 'address') expect(r.target.text).toBe(parseTarget(text).text);
          if (r.kind === 'invalid') expect(r.shown.length).toBeLessThanOrEqual(64 * 6);
        },
        { runs: 30_000 },
      );
    },
    timeout(10),
  );

  it(
    'fail2ban-zmq-tools: encoded requests check back to the same message; hostile frames are refused by reason',
    () => {
      const msg = fc.record({ hostname, jail, action, attacker: docAddress });
      const auth = fc.record({ on: fc.boolean(), token });
      f.prop(
        'zmq-round-trip',
        fc.tuple(msg, auth),
        ([m, a]) => {
          const text = encodeRequest(m, a);
          const r = checkRequest(Buffer.from(text), a);
          if (!r.ok) throw new Error(`refused ${r.reason}`);
          expect(r.message).toMatchObject(m);
          const b = checkBroadcast(Buffer.from(r.text));
          expect(b.ok && b.message.attacker).toBe(m.attacker);
        },
        { runs: 15_000 },
      );
      const frame = fc.oneof(
        mutated(fc.tuple(msg, auth).map(([m, a]) => Buffer.from(encodeRequest(m, a)))),
        fc.uint8Array({ maxLength: 80 }).map((u) => Buffer.from(u)),
        textFrom('ab|.-_0129:Ban', 80).map((s) => Buffer.from(s)),
      );
      f.prop(
        'zmq-hostile',
        fc.tuple(frame, auth),
        ([fr, a]) => {
          for (const r of [checkRequest(fr, a), checkRequest(fr, a, 64), checkBroadcast(fr)]) {
            if (!r.ok) continue;
            expect(validHostname(r.message.hostname) && validJail(r.message.jail)).toBe(true);
            expect(r.message.action).toMatch(/^(ban|unban)$/i);
            expect(isIP(r.message.attacker)).not.toBe(0);
          }
        },
        { runs: 25_000 },
      );
    },
    timeout(15),
  );

  it(
    'net2ban: encode→seal→open→parse round-trips; any mutated byte is refused',
    () => {
      f.prop(
        'net2ban-round-trip',
        command,
        (c) => {
          const sealed = sealBody(encodeCommand(c), key, authKey);
          const opened = openBody(sealed, key, authKey);
          if (!opened.ok) throw new Error(opened.reason);
          const parsed = parseCommand(opened.plain, { validWtime: 60, now: NOW });
          if (!parsed.ok) throw new Error(`${parsed.reason}: ${parsed.detail}`);
          expect(parsed.command).toEqual(c);
        },
        { runs: 10_000 },
      );
      const pool = fc
        .sample(command, { numRuns: 200, seed: 3 })
        .map((c) => sealBody(encodeCommand(c), key, authKey));
      f.prop(
        'net2ban-mutation',
        mutated(fc.constantFrom(...pool)),
        (bad) => {
          if (pool.some((p) => p.equals(bad))) return;
          const r = openBody(bad, key, authKey);
          expect(r.ok).toBe(false);
        },
        { runs: 20_000 },
      );
    },
    timeout(15),
  );

  it(
    'net2ban: any decrypted plaintext parses to a checked command or a reason, never a throw',
    () => {
      const plain = fc.oneof(
        command.map((c) => encodeCommand(c)),
        mutated(command.map((c) => encodeCommand(c))),
        fc.jsonValue({ maxDepth: 2 }).map((j) => Buffer.from(JSON.stringify(j) ?? '')),
        fc
          .dictionary(
            fc.constantFrom('cmd', 'file', 'action', 'params', 'timestamp', 'content', 'client'),
            fc.oneof(
              fc.jsonValue({ maxDepth: 1 }),
              fc.constantFrom('exec', 'update', NOW / 1000, '../x', 'a.b'),
            ),
          )
          .map((j) => Buffer.from(JSON.stringify(j))),
      );
      f.prop(
        'net2ban-parse',
        plain,
        (p) => {
          const r = parseCommand(p, { validWtime: 60, now: NOW });
          if (!r.ok) return;
          expect(r.command.file).toMatch(/^[A-Za-z0-9_-]{1,100}$/);
          const c = r.command;
          if (c.cmd === 'exec' && c.params.ip !== undefined)
            expect(() => parseTarget(c.params.ip!)).not.toThrow();
        },
        { runs: 20_000 },
      );
    },
    timeout(10),
  );
});

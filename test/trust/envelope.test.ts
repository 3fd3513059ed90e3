import { type KeyObject, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DropCounter,
  type DropReason,
  generateEncryptionKey,
  type OpenOptions,
  open,
  ReplayCache,
  seal,
} from '../../src/trust/envelope.js';
import { generateKeyPair } from '../../src/trust/keys.js';

const hub = generateKeyPair();
const web1 = generateKeyPair();
const T0 = 1_700_000_000_000;

function opener(keys: Map<string, KeyObject>, extra: Partial<OpenOptions> = {}) {
  const drops = new DropCounter();
  const replay = new ReplayCache();
  const opts: OpenOptions = { keyFor: (f) => keys.get(f), replay, drops, now: () => T0, ...extra };
  return {
    drops,
    replay,
    open: (b: Buffer | string, o: Partial<OpenOptions> = {}) => open(b, { ...opts, ...o }),
  };
}

function refused(r: ReturnType<typeof open>): DropReason | 'accepted' {
  return r.ok ? 'accepted' : r.reason;
}

const report = {
  target: '192.0.2.1',
  rule: 'sshd',
  reason: 'x',
  hits: 5,
  duration: 600,
  at: T0,
  set: 'blocklist',
};

describe('envelope', () => {
  const keys = new Map([
    ['hub', hub.publicKey],
    ['web1', web1.publicKey],
  ]);

  it('envelope - a sealed report opens with the same body, sender, kind and time', () => {
    const { open: o, drops } = opener(keys);
    const r = o(seal('report', report, 'web1', web1.privateKey, { ts: T0 }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({ v: 1, kind: 'report', from: 'web1', ts: T0, body: report });
    expect(r.env.id).toMatch(/^[0-9a-f]{32}$/);
    expect(drops.total()).toBe(0);
  });

  it('envelope - body tampered after signing is a bad signature', () => {
    const { open: o, drops } = opener(keys);
    const wire = JSON.parse(seal('report', report, 'web1', web1.privateKey, { ts: T0 }).toString());
    wire.body = wire.body.replace('192.0.2.1', '192.0.2.2');
    expect(refused(o(JSON.stringify(wire)))).toBe('bad-signature');
    // Re-ordering keys of the body also changes the signed bytes: no JSON canonicalisation games.
    const w2 = JSON.parse(seal('report', { a: 1, b: 2 }, 'web1', web1.privateKey, { ts: T0 }).toString());
    w2.body = '{"b":2,"a":1}';
    expect(refused(o(JSON.stringify(w2)))).toBe('bad-signature');
    expect(drops.get('bad-signature')).toBe(2);
  });

  it('envelope - header fields are signed too (sender, kind, ts, id)', () => {
    const { open: o } = opener(keys);
    const fresh = () => JSON.parse(seal('report', report, 'web1', web1.privateKey, { ts: T0 }).toString());
    const w1 = fresh();
    w1.ts = T0 + 1;
    expect(refused(o(JSON.stringify(w1)))).toBe('bad-signature');
    const w2 = fresh();
    w2.kind = 'decision';
    expect(refused(o(JSON.stringify(w2)))).toBe('bad-signature');
    const w3 = fresh();
    w3.id = '0'.repeat(32);
    expect(refused(o(JSON.stringify(w3)))).toBe('bad-signature');
    // A node claiming to be the hub: verified against the hub key, so refused.
    const w4 = fresh();
    w4.from = 'hub';
    expect(refused(o(JSON.stringify(w4)))).toBe('bad-signature');
  });

  it('envelope - a re-spelled signature (padding dropped, unused bits set) is a bad signature', () => {
    // Found by test/fuzz/trust.test.ts (seed 1913301767): base64 decoding is lenient, so the
    // same 64 signature bytes had several spellings, each accepted as a new envelope.
    const { open: o, drops } = opener(keys);
    const wire = JSON.parse(seal('report', report, 'web1', web1.privateKey, { ts: T0 }).toString());
    const noPad = { ...wire, sig: wire.sig.replace(/=+$/, '') };
    expect(refused(o(JSON.stringify(noPad)))).toBe('bad-signature');
    // 64 bytes fill 85⅓ base64 characters: the last one's 4 low bits are unused.
    const last = wire.sig[85];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const twin = alphabet[alphabet.indexOf(last) ^ 1];
    const lowBits = { ...wire, sig: `${wire.sig.slice(0, 85)}${twin}==` };
    expect(Buffer.from(lowBits.sig, 'base64')).toEqual(Buffer.from(wire.sig, 'base64'));
    expect(refused(o(JSON.stringify(lowBits)))).toBe('bad-signature');
    expect(drops.get('bad-signature')).toBe(2);
    expect(refused(o(JSON.stringify(wire)))).toBe('accepted');
  });

  it('envelope - a valid message replayed is refused and counted', () => {
    const { open: o, drops, replay } = opener(keys);
    const msg = seal('decision', { seq: 1 }, 'hub', hub.privateKey, { ts: T0 });
    expect(refused(o(msg))).toBe('accepted');
    expect(refused(o(msg))).toBe('replay');
    expect(refused(o(msg, { now: () => T0 + 30_000 }))).toBe('replay');
    expect(drops.get('replay')).toBe(2);
    expect(replay.replays).toBe(2);
  });

  it('envelope - outside the window in either direction: expired or future', () => {
    const { open: o } = opener(keys);
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 - 60_001 })))).toBe('expired');
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 + 60_001 })))).toBe('future');
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 - 60_000 })))).toBe('accepted');
    const late = seal('report', report, 'web1', web1.privateKey, { ts: T0 - 5_000 });
    expect(refused(o(late, { windowMs: 1_000 }))).toBe('expired');
  });

  it('envelope - unknown sender, and a sender whose key was removed', () => {
    const k = new Map(keys);
    const { open: o } = opener(k);
    const stranger = generateKeyPair();
    expect(refused(o(seal('report', report, 'web9', stranger.privateKey, { ts: T0 })))).toBe(
      'unknown-sender',
    );
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 })))).toBe('accepted');
    k.delete('web1');
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 })))).toBe('unknown-sender');
    // Signed by the right name with another key (a re-enrolled or impersonated node).
    k.set('web1', generateKeyPair().publicKey);
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 })))).toBe('bad-signature');
  });

  it('envelope - unsigned, wrong kind, too large, malformed', () => {
    const { open: o, drops } = opener(keys);
    const wire = JSON.parse(seal('report', report, 'web1', web1.privateKey, { ts: T0 }).toString());
    delete wire.sig;
    expect(refused(o(JSON.stringify(wire)))).toBe('unsigned');
    expect(refused(o(JSON.stringify({ ...wire, sig: '' })))).toBe('unsigned');
    expect(refused(o(JSON.stringify({ ...wire, sig: 'AAAA' })))).toBe('bad-signature');
    const msg = seal('report', report, 'web1', web1.privateKey, { ts: T0 });
    expect(refused(o(msg, { expectKind: 'decision' }))).toBe('wrong-kind');
    expect(refused(o(msg, { expectKind: ['heartbeat', 'report'] }))).toBe('accepted');
    expect(refused(o(seal('report', 'x'.repeat(70_000), 'web1', web1.privateKey, { ts: T0 })))).toBe(
      'too-large',
    );
    for (const junk of [
      '',
      'null',
      '[]',
      '{"v":2}',
      '\u0000\xff',
      '{"v":1,"kind":"report"}',
      'a'.repeat(100),
    ]) {
      expect(refused(o(junk))).toBe('malformed');
    }
    expect(refused(o(JSON.stringify({ ...wire, sig: 'x', from: 'a/b' })))).toBe('malformed');
    expect(refused(o(JSON.stringify({ ...wire, sig: 'x', ts: 1.5 })))).toBe('malformed');
    expect(drops.get('malformed')).toBe(9);
    expect(drops.snapshot()['too-large']).toBe(1);
  });

  it('envelope - junk is refused by its framing; padding and views of a larger buffer still open', () => {
    const { open: o } = opener(keys);
    for (const junk of ['{"v":1,"junk":7', ' {', '}', '{}x', Buffer.alloc(64, 0x7b)]) {
      expect(refused(o(junk))).toBe('malformed');
    }
    const msg = seal('report', report, 'web1', web1.privateKey, { ts: T0 });
    expect(refused(o(`\n\t ${msg.toString()} \r\n`))).toBe('accepted');
    // A message that is a slice of a bigger buffer (as a broker's packet parser hands it over).
    const big = Buffer.concat([Buffer.from('xx{'), msg, Buffer.from('}yy')]);
    const view = new Uint8Array(big.buffer, big.byteOffset + 3, msg.length);
    expect(open(view, { keyFor: (f) => keys.get(f), replay: new ReplayCache(), now: () => T0 }).ok).toBe(
      true,
    );
  });

  it('envelope - a forged message does not poison the replay cache', () => {
    const { open: o, replay } = opener(keys);
    const good = seal('report', report, 'web1', web1.privateKey, { ts: T0 });
    const forged = JSON.parse(good.toString());
    forged.body = '{"target":"203.0.113.9"}';
    expect(refused(o(JSON.stringify(forged)))).toBe('bad-signature');
    expect(replay.size).toBe(0);
    expect(refused(o(good))).toBe('accepted');
  });

  it('envelope - encrypted bodies: hidden on the wire, opened with the key, refused without', () => {
    const key = generateEncryptionKey();
    const { open: o } = opener(keys);
    const msg = seal('report', report, 'web1', web1.privateKey, { ts: T0, encryptKey: key });
    expect(msg.toString()).not.toContain('192.0.2.1');
    const r = o(msg, { decryptKey: key });
    expect(r.ok && r.env.body).toEqual(report);
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0, encryptKey: key })))).toBe(
      'undecryptable',
    );
    const wrong = generateEncryptionKey();
    expect(
      refused(
        o(seal('report', report, 'web1', web1.privateKey, { ts: T0, encryptKey: key }), {
          decryptKey: wrong,
        }),
      ),
    ).toBe('undecryptable');
    expect(refused(o(seal('report', report, 'web1', web1.privateKey, { ts: T0 }), { decryptKey: key }))).toBe(
      'unencrypted',
    );
    const tampered = JSON.parse(
      seal('report', report, 'web1', web1.privateKey, { ts: T0, encryptKey: key }).toString(),
    );
    tampered.enc.tag = Buffer.alloc(16).toString('base64');
    expect(refused(o(JSON.stringify(tampered), { decryptKey: key }))).toBe('bad-signature');
  });

  it('envelope - the reused signing buffer: big, small, non-ASCII and tampered bodies in any order', () => {
    const keys = new Map([['hub', hub.publicKey]]);
    const { open: o } = opener(keys, { maxBytes: 8 * 1024 * 1024 });
    const big = Array.from({ length: 3000 }, (_, i) => ({
      seq: i + 1,
      target: `198.18.${i >> 8}.${i & 255}`,
    }));
    // Multi-byte UTF-8, an astral character (a surrogate pair) and a lone surrogate (U+FFFD bytes).
    const wide = { reason: 'répété 🚫 \ud800 "quoted" \\ end', set: 'blocklist' };
    // Past the buffer's 4 MiB bound (3 bytes per unit): a one-off buffer, then the reused one again.
    const huge = { pad: 'x'.repeat(1_500_000) };
    const bodies: unknown[] = [big, report, wide, huge, big, wide, report];
    for (const [i, body] of bodies.entries()) {
      const env = seal('decisions', body, 'hub', hub.privateKey, {
        ts: T0,
        id: i.toString(16).padStart(32, '0'),
      });
      const r = o(env);
      expect(r.ok && r.env.body).toEqual(JSON.parse(JSON.stringify(body)));
      // The signed bytes are the documented input, as any other implementation builds it.
      const sent = JSON.parse(env.toString());
      const input = Buffer.from(`rampart-envelope|1|decisions|hub|${T0}|${sent.id}||${sent.body}`, 'utf8');
      expect(verify(null, input, hub.publicKey, Buffer.from(sent.sig, 'base64'))).toBe(true);
      // The same bytes with one character of the body changed: the previous, longer input left in
      // the buffer must not make it verify.
      const wire = JSON.parse(env.toString());
      wire.id = (i + 100).toString(16).padStart(32, '0');
      wire.body = wire.body.replace(/.$/s, ' ');
      expect(refused(o(Buffer.from(JSON.stringify(wire))))).toBe('bad-signature');
    }
  });

  it('envelope - seal refuses names that would break topics or the signing input', () => {
    expect(() => seal('report', report, 'a|b', web1.privateKey)).toThrow(/sender name/);
    expect(() => seal('report', report, 'a/b', web1.privateKey)).toThrow(/sender name/);
    expect(() => seal('Report', report, 'a', web1.privateKey)).toThrow(/kind/);
    expect(() => seal('report', undefined, 'a', web1.privateKey)).toThrow(/JSON/);
  });
});

describe('replay cache', () => {
  it('replay cache - forgets ids once their window has passed', () => {
    const c = new ReplayCache();
    expect(c.check('a', 100, 0)).toBe(true);
    expect(c.check('b', 200, 0)).toBe(true);
    expect(c.check('a', 100, 50)).toBe(false);
    expect(c.check('c', 300, 150)).toBe(true);
    expect(c.size).toBe(2);
    expect(c.check('a', 400, 150)).toBe(true);
  });

  it('replay cache - bounded: a flood of ids never grows past maxEntries', () => {
    const c = new ReplayCache({ maxEntries: 1000 });
    for (let i = 0; i < 10_000; i++) c.check(`id${i}`, 1e12, 0);
    expect(c.size).toBe(1000);
    expect(c.evicted).toBe(9000);
    expect(c.check('id9999', 1e12, 0)).toBe(false);
  });
});

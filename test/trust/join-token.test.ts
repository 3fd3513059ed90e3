import { describe, expect, it } from 'vitest';
import {
  checkHubKey,
  createJoinToken,
  decodeJoinToken,
  encodeJoinToken,
  hashJoinSecret,
  verifyJoinSecret,
} from '../../src/trust/join-token.js';
import { generateKeyPair, publicKeyToText } from '../../src/trust/keys.js';

const hub = generateKeyPair();

describe('join token', () => {
  it('join token - round-trips url, hub key fingerprint, name and secret', () => {
    const { token, secretHash, fields } = createJoinToken({
      url: 'http://198.51.100.1:7780',
      hubPublicKey: hub.publicKey,
      name: 'web2',
    });
    expect(token.startsWith('rpj1.')).toBe(true);
    expect(token.length).toBeLessThan(260);
    const t = decodeJoinToken(`  ${token}\n`);
    expect(t).toEqual(fields);
    expect(verifyJoinSecret(t.secret, secretHash)).toBe(true);
    expect(secretHash).not.toContain(t.secret);
    expect(checkHubKey(t, publicKeyToText(hub.publicKey))).toBeDefined();
  });

  it('join token - a wrong secret or hash is refused', () => {
    const { fields, secretHash } = createJoinToken({
      url: 'https://hub.example',
      hubPublicKey: hub.publicKey,
      name: 'a',
    });
    const other = createJoinToken({ url: 'https://hub.example', hubPublicKey: hub.publicKey, name: 'a' });
    expect(verifyJoinSecret(other.fields.secret, secretHash)).toBe(false);
    expect(verifyJoinSecret(fields.secret, 'sha256:00')).toBe(false);
    expect(verifyJoinSecret(fields.secret, hashJoinSecret(fields.secret))).toBe(true);
  });

  it('join token - a hub presenting another key is refused', () => {
    const { fields } = createJoinToken({ url: 'http://h:7780', hubPublicKey: hub.publicKey, name: 'a' });
    expect(() => checkHubKey(fields, publicKeyToText(generateKeyPair().publicKey))).toThrow(
      /does not match the join token/,
    );
  });

  it('join token - corrupt tokens give a clear error', () => {
    const { token } = createJoinToken({ url: 'http://h:7780', hubPublicKey: hub.publicKey, name: 'a' });
    expect(() => decodeJoinToken('hello')).toThrow(/must start with rpj1\./);
    expect(() => decodeJoinToken(token.slice(0, 40))).toThrow(/join token is corrupt/);
    expect(() => decodeJoinToken(`${token}!`)).toThrow(/characters/);
    const bad = (o: object) => `rpj1.${Buffer.from(JSON.stringify(o)).toString('base64url')}`;
    const ok = decodeJoinToken(token);
    const base = { u: ok.url, k: ok.hubKey, n: ok.name, s: ok.secret };
    expect(() => decodeJoinToken(bad({ ...base, u: 'ftp://x' }))).toThrow(/hub URL/);
    expect(() => decodeJoinToken(bad({ ...base, n: 'a/b' }))).toThrow(/node name/);
    expect(() => decodeJoinToken(bad({ ...base, s: 'short' }))).toThrow(/secret/);
    expect(() => decodeJoinToken(bad({ ...base, k: 1 }))).toThrow(/fingerprint/);
    expect(() => encodeJoinToken({ ...ok, name: '' })).toThrow(/node name/);
  });
});

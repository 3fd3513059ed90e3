import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  fingerprint,
  generateKeyPair,
  loadKeyPair,
  loadOrCreateKeyPair,
  publicKeyFromText,
  publicKeyToText,
  rawPublicKey,
} from '../../src/trust/keys.js';
import { readSecretFile, writeSecretFile } from '../../src/trust/secret-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rampart-keys-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('keys', () => {
  it('keys - first start creates a 0600 key in a 0700 folder, second start loads the same key', () => {
    const sub = join(dir, 'hub');
    const a = loadOrCreateKeyPair(sub, 'hub.key');
    expect(statSync(sub).mode & 0o777).toBe(0o700);
    expect(statSync(join(sub, 'hub.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(sub, 'hub.key'), 'utf8')).toContain('BEGIN PRIVATE KEY');
    const b = loadOrCreateKeyPair(sub, 'hub.key');
    expect(publicKeyToText(b.publicKey)).toBe(publicKeyToText(a.publicKey));
  });

  it('keys - a group or world readable key file is refused with the chmod fix', () => {
    loadOrCreateKeyPair(dir, 'node.key');
    chmodSync(join(dir, 'node.key'), 0o644);
    expect(() => loadKeyPair(dir, 'node.key')).toThrow(/readable by group or others.*chmod 600/);
  });

  it('keys - a file that is not a key is refused naming it', () => {
    writeFileSync(join(dir, 'node.key'), 'hello', { mode: 0o600 });
    expect(() => loadOrCreateKeyPair(dir, 'node.key')).toThrow(/node\.key is not a PEM private key/);
  });

  it('keys - public key text round-trips as base64 of 32 raw bytes; garbage is refused', () => {
    const { publicKey } = generateKeyPair();
    const text = publicKeyToText(publicKey);
    expect(Buffer.from(text, 'base64')).toHaveLength(32);
    expect(publicKeyToText(publicKeyFromText(text))).toBe(text);
    expect(() => publicKeyFromText('abc')).toThrow(/32 raw Ed25519 bytes/);
    expect(() => publicKeyFromText(Buffer.alloc(33).toString('base64'))).toThrow(/32 raw/);
  });

  it('keys - fingerprint is base64url sha256 of the raw key, stable and distinct', () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(fingerprint(a.publicKey)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(fingerprint(a.privateKey)).toBe(fingerprint(a.publicKey));
    expect(fingerprint(a.publicKey)).not.toBe(fingerprint(b.publicKey));
    expect(rawPublicKey(a.publicKey)).toHaveLength(32);
  });

  it('keys - exclusive secret writes keep the first file; leave no temp files behind', () => {
    const f = join(dir, 'sub', 'admin.token');
    expect(writeSecretFile(f, 'first', { exclusive: true })).toBe(true);
    expect(writeSecretFile(f, 'second', { exclusive: true })).toBe(false);
    expect(readSecretFile(f)).toBe('first');
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    expect(writeSecretFile(f, 'third')).toBe(true);
    expect(readSecretFile(f)).toBe('third');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['admin.token']);
  });
});

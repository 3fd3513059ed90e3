import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { RampartError } from '../core/errors.js';
import { readSecretFile, writeSecretFile } from './secret-file.js';

/** An Ed25519 key pair (node:crypto KeyObjects). */
export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** Creates a fresh Ed25519 key pair. */
export function generateKeyPair(): KeyPair {
  return generateKeyPairSync('ed25519');
}

/**
 * Loads the Ed25519 private key in `dir/name`. Refuses (E_AUTH) a key file that the group or others
 * can read, like ssh does: a leaked node key lets anyone report bans in that node's name.
 */
export function loadKeyPair(dir: string, name: string): KeyPair {
  const file = join(dir, name);
  const pem = readSecretFile(file, 'key file');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new RampartError('E_AUTH', `key file ${file} is not a PEM private key`, { cause: err });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new RampartError(
      'E_AUTH',
      `key file ${file} holds a ${privateKey.asymmetricKeyType} key, not Ed25519`,
    );
  }
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/**
 * Loads `dir/name`, or creates and saves a new key pair there on first start. The hub calls it
 * with (`DATA/hub`, `hub.key`), the agent with (`DATA/agent`, `node.key`).
 */
export function loadOrCreateKeyPair(dir: string, name: string): KeyPair {
  const file = join(dir, name);
  let exists = true;
  try {
    statSync(file);
  } catch (err) {
    exists = (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
  if (!exists) {
    const pair = generateKeyPair();
    // Exclusive: when another process created the key meanwhile, use theirs.
    if (writeSecretFile(file, pemOf(pair), { exclusive: true, what: 'key' })) return pair;
  }
  return loadKeyPair(dir, name);
}

/** The raw 32-byte Ed25519 public key. */
export function rawPublicKey(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  assertEd25519(pub, 'public');
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/**
 * Fingerprint of a public key: SHA-256 of the raw 32-byte key, base64url without padding
 * (43 characters). Join tokens carry it so a new node can check the hub key it is given.
 */
export function fingerprint(key: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(key)).digest('base64url');
}

/** Text form of a public key for the hub DB and the join exchange: base64 of the raw 32 bytes. */
export function publicKeyToText(key: KeyObject): string {
  return rawPublicKey(key).toString('base64');
}

/** Parses {@link publicKeyToText} output; throws E_AUTH on anything but 32 bytes of base64. */
export function publicKeyFromText(text: string): KeyObject {
  const raw =
    typeof text === 'string' && /^[A-Za-z0-9+/]{43}=?$/.test(text) ? Buffer.from(text, 'base64') : null;
  if (raw?.length !== 32) {
    throw new RampartError('E_AUTH', 'public key must be base64 of 32 raw Ed25519 bytes');
  }
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
  } catch (err) {
    throw new RampartError('E_AUTH', 'public key is not a valid Ed25519 key', { cause: err });
  }
}

function pemOf(pair: KeyPair): string {
  assertEd25519(pair.privateKey, 'private');
  return pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

function assertEd25519(key: KeyObject, type: 'public' | 'private'): void {
  if (key.asymmetricKeyType !== 'ed25519' || key.type !== type) {
    throw new RampartError('E_AUTH', `expected an Ed25519 ${type} key`);
  }
}

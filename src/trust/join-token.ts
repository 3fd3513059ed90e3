import { createHash, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { RampartError } from '../core/errors.js';
import { isValidSenderName } from './envelope.js';
import { fingerprint, publicKeyFromText } from './keys.js';

/**
 * What `rampart nodes add NAME` prints and `rampart join TOKEN` consumes. See docs/protocol.md
 * ("Enrolment") for the exchange.
 */
export interface JoinToken {
  /** Hub API base URL, e.g. `http://198.51.100.1:7780`. */
  url: string;
  /** {@link fingerprint} of the hub's public key: the new node checks the key the hub returns. */
  hubKey: string;
  /** Node name the token was issued for. */
  name: string;
  /** One-time secret, 32 random bytes as base64url (43 characters). */
  secret: string;
  /** Epoch ms after which the hub refuses the token, when it set one. */
  expiresAt?: number;
}

export const JOIN_TOKEN_PREFIX = 'rpj1.';
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;
const FP_RE = /^[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_CHARS = 2048;

/** A new 256-bit one-time secret (base64url). */
export function newJoinSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Issues a token for `name`; the hub stores `secretHash` and prints `token`. */
export function createJoinToken(opts: {
  url: string;
  hubPublicKey: KeyObject;
  name: string;
  expiresAt?: number;
}): {
  token: string;
  secretHash: string;
  fields: JoinToken;
} {
  const fields: JoinToken = {
    url: opts.url,
    hubKey: fingerprint(opts.hubPublicKey),
    name: opts.name,
    secret: newJoinSecret(),
    ...(opts.expiresAt !== undefined ? { expiresAt: opts.expiresAt } : {}),
  };
  return { token: encodeJoinToken(fields), secretHash: hashJoinSecret(fields.secret), fields };
}

/** `rpj1.` + base64url of compact JSON `{u, k, n, s, e?}`. */
export function encodeJoinToken(t: JoinToken): string {
  validate(t);
  const json: Record<string, unknown> = { u: t.url, k: t.hubKey, n: t.name, s: t.secret };
  if (t.expiresAt !== undefined) json.e = t.expiresAt;
  return JOIN_TOKEN_PREFIX + Buffer.from(JSON.stringify(json)).toString('base64url');
}

/** Parses a join token; throws E_USAGE with the reason for anything corrupt or truncated. */
export function decodeJoinToken(text: string): JoinToken {
  const token = typeof text === 'string' ? text.trim() : '';
  if (!token.startsWith(JOIN_TOKEN_PREFIX)) {
    throw corrupt(
      `it must start with ${JOIN_TOKEN_PREFIX} (copy the whole line printed by "rampart nodes add")`,
    );
  }
  const payload = token.slice(JOIN_TOKEN_PREFIX.length);
  if (token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(payload)) {
    throw corrupt('it contains characters that base64url does not use');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw corrupt('it does not decode (truncated when copied?)');
  }
  if (typeof raw !== 'object' || raw === null) throw corrupt('it does not decode');
  const r = raw as Record<string, unknown>;
  const t: JoinToken = {
    url: r.u as string,
    hubKey: r.k as string,
    name: r.n as string,
    secret: r.s as string,
    ...(r.e !== undefined ? { expiresAt: r.e as number } : {}),
  };
  validate(t);
  return t;
}

/** What the hub stores instead of the secret: `sha256:` + hex. A 256-bit secret needs no slow KDF. */
export function hashJoinSecret(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('hex')}`;
}

/** Compares a presented secret with a stored {@link hashJoinSecret} in constant time. */
export function verifyJoinSecret(secret: string, storedHash: string): boolean {
  if (typeof secret !== 'string' || typeof storedHash !== 'string') return false;
  const a = Buffer.from(hashJoinSecret(secret));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The joining node's check of the hub key returned by `POST /v1/join`: it must match the
 * fingerprint in the token, or someone between the node and the hub answered. Returns the key.
 */
export function checkHubKey(token: JoinToken, hubPublicKeyText: string): KeyObject {
  const key = publicKeyFromText(hubPublicKeyText);
  const a = Buffer.from(fingerprint(key));
  const b = Buffer.from(token.hubKey);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new RampartError(
      'E_AUTH',
      `the hub at ${token.url} presented a key that does not match the join token`,
    );
  }
  return key;
}

function validate(t: JoinToken): void {
  let url: URL | null = null;
  try {
    url = typeof t.url === 'string' ? new URL(t.url) : null;
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw corrupt('the hub URL is missing or invalid');
  if (typeof t.hubKey !== 'string' || !FP_RE.test(t.hubKey))
    throw corrupt('the hub key fingerprint is invalid');
  if (typeof t.name !== 'string' || !isValidSenderName(t.name)) throw corrupt('the node name is invalid');
  if (typeof t.secret !== 'string' || !SECRET_RE.test(t.secret)) throw corrupt('the secret is invalid');
  if (t.expiresAt !== undefined && !Number.isSafeInteger(t.expiresAt)) throw corrupt('the expiry is invalid');
}

function corrupt(why: string): RampartError {
  return new RampartError('E_USAGE', `join token is corrupt: ${why}`);
}

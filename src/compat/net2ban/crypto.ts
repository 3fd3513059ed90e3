import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** Why a message body was refused (each a counter label and a log reason). */
export type OpenFailure = 'truncated' | 'bad-hmac' | 'bad-padding';

const IV = 16;
const BLOCK = 16;
const MAC_HEX = 64;

/**
 * The AES key of one peer: the first 32 characters of passlib's `pbkdf2_sha256` checksum, i.e.
 * PBKDF2-HMAC-SHA256(password = the peer's key, salt = the secret's bytes, rounds, 32 bytes) in
 * passlib's "adapted base64" (standard alphabet with `+` written `.`, no padding). Those 32 ASCII
 * characters are used as the 32-byte AES-256 key.
 */
export function sessionKey(key: string, secret: string, rounds: number): Buffer {
  const raw = pbkdf2Sync(Buffer.from(key, 'utf8'), Buffer.from(secret, 'utf8'), rounds, 32, 'sha256');
  const ab64 = raw.toString('base64').replace(/=+$/, '').replace(/\+/g, '.');
  return Buffer.from(ab64.slice(0, 32), 'ascii');
}

function mac(authKey: string, data: Buffer): string {
  return createHmac('sha256', Buffer.from(authKey, 'utf8')).update(data).digest('hex');
}

/** IV ‖ AES-256-CBC(PKCS#7) ‖ hex HMAC-SHA256(authkey, IV ‖ ciphertext). */
export function sealBody(plain: Buffer, key: Buffer, authKey: string, iv: Buffer = randomBytes(IV)): Buffer {
  const c = createCipheriv('aes-256-cbc', key, iv);
  const body = Buffer.concat([iv, c.update(plain), c.final()]);
  return Buffer.concat([body, Buffer.from(mac(authKey, body), 'ascii')]);
}

/**
 * Checks and decrypts one body: the length first (IV, whole blocks, the MAC), then the HMAC in
 * constant time (before any decryption, so a forged body tells nothing about the key), then the
 * PKCS#7 padding, every byte of it.
 */
export function openBody(
  msg: Buffer,
  key: Buffer,
  authKey: string,
): { ok: true; plain: Buffer } | { ok: false; reason: OpenFailure } {
  const ctLen = msg.length - IV - MAC_HEX;
  if (ctLen < BLOCK || ctLen % BLOCK !== 0) return { ok: false, reason: 'truncated' };
  const body = msg.subarray(0, msg.length - MAC_HEX);
  const given = msg.subarray(msg.length - MAC_HEX);
  const want = Buffer.from(mac(authKey, body), 'ascii');
  if (!timingSafeEqual(given, want)) return { ok: false, reason: 'bad-hmac' };
  const d = createDecipheriv('aes-256-cbc', key, body.subarray(0, IV));
  d.setAutoPadding(false);
  const padded = Buffer.concat([d.update(body.subarray(IV)), d.final()]);
  const pad = padded[padded.length - 1]!;
  if (pad < 1 || pad > BLOCK) return { ok: false, reason: 'bad-padding' };
  for (let i = padded.length - pad; i < padded.length; i++) {
    if (padded[i] !== pad) return { ok: false, reason: 'bad-padding' };
  }
  return { ok: true, plain: padded.subarray(0, padded.length - pad) };
}

import { createCipheriv, createDecipheriv, type KeyObject, randomBytes, sign, verify } from 'node:crypto';
import { RampartError } from '../core/errors.js';
import type { DropCounter, DropReason } from './drop-counter.js';
import type { ReplayCache } from './replay-cache.js';

export { DROP_REASONS, DropCounter, type DropReason } from './drop-counter.js';
export { ReplayCache } from './replay-cache.js';

/** Message kinds on the bus; others may be added (lowercase letters, digits, `-`). */
export type EnvelopeKind = 'report' | 'decision' | 'heartbeat' | (string & {});

/** An opened (verified) envelope: `body` is the parsed JSON the sender sealed. */
export interface Envelope {
  v: 1;
  kind: EnvelopeKind;
  /** Sender: `hub`, or the node name it enrolled with. */
  from: string;
  /** Sender's clock, epoch milliseconds. */
  ts: number;
  /** Random 128-bit id, 32 lowercase hex characters; the replay cache remembers it. */
  id: string;
  body: unknown;
  /** Ed25519 signature, base64. */
  sig: string;
}

/** What travels on the wire: `body` is the exact JSON text signed (or base64 ciphertext with `enc`). */
interface WireEnvelope {
  v: 1;
  kind: string;
  from: string;
  ts: number;
  id: string;
  body: string;
  enc?: { alg: 'A256GCM'; iv: string; tag: string };
  sig: string;
}

/**
 * `skew` is set on an `expired`/`future` refusal whose signature is nevertheless good: the sender
 * is who it says and its clock is off by `skew.ms` (its time minus ours), which operators must see.
 */
export type OpenResult =
  | { ok: true; env: Envelope }
  | { ok: false; reason: DropReason; skew?: { from: string; ms: number } };

export interface OpenOptions {
  /** Public key of a sender, or undefined for an unknown or removed one. Synchronous: cache keys. */
  keyFor: (from: string) => KeyObject | undefined;
  replay: ReplayCache;
  /** Accepted clock difference in both directions, default 60 s. */
  windowMs?: number;
  /** When set, bodies must be encrypted with this AES-256 key (32 bytes); plain ones are refused. */
  decryptKey?: Buffer;
  expectKind?: EnvelopeKind | readonly EnvelopeKind[];
  /** Largest accepted message, default 64 KiB. */
  maxBytes?: number;
  /** Counts every refusal by reason. */
  drops?: DropCounter;
  now?: () => number;
}

export interface SealOptions {
  /** Encrypts the body with AES-256-GCM (32-byte key) for brokers you do not trust. */
  encryptKey?: Buffer;
  ts?: number;
  id?: string;
}

export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_MAX_ENVELOPE_BYTES = 64 * 1024;

// Sender names become MQTT topic levels and the fields of the signing input, so they may not
// contain `/`, `+`, `#` or the `|` separator.
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const KIND_RE = /^[a-z][a-z0-9-]{0,31}$/;
const ID_RE = /^[0-9a-f]{32}$/;
const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const SIG_PREFIX = 'rampart-envelope';

/** True for a name usable as a node name / envelope sender (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`). */
export function isValidSenderName(name: string): boolean {
  return NAME_RE.test(name);
}

/**
 * Signs `body` as `from` with an Ed25519 private key and returns the envelope's JSON bytes.
 * The signature covers `rampart-envelope|1|kind|from|ts|id|enc|body` where `body` is the exact
 * JSON text (or ciphertext) carried in the envelope, so verification never re-serialises JSON.
 */
export function seal(
  kind: EnvelopeKind,
  body: unknown,
  from: string,
  privateKey: KeyObject,
  opts: SealOptions = {},
): Buffer {
  if (!KIND_RE.test(kind)) throw new RampartError('E_BUS', `invalid envelope kind ${JSON.stringify(kind)}`);
  if (!NAME_RE.test(from)) throw new RampartError('E_BUS', `invalid sender name ${JSON.stringify(from)}`);
  const json = JSON.stringify(body);
  if (json === undefined) throw new RampartError('E_BUS', 'envelope body must be JSON-serialisable');
  const ts = opts.ts ?? Date.now();
  const id = opts.id ?? randomBytes(16).toString('hex');
  const header = headerOf(kind, from, ts, id);
  let text = json;
  let enc: WireEnvelope['enc'];
  if (opts.encryptKey) {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', checkAesKey(opts.encryptKey), iv);
    // The header is authenticated data: a ciphertext cannot be moved under another sender or id.
    cipher.setAAD(Buffer.from(header));
    text = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]).toString('base64');
    enc = { alg: 'A256GCM', iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }
  const sig = sign(null, signingInput(header, enc, text), privateKey).toString('base64');
  const wire: WireEnvelope = { v: 1, kind, from, ts, id, body: text, ...(enc ? { enc } : {}), sig };
  return Buffer.from(JSON.stringify(wire));
}

const WIRE = Symbol('wire');
const BODY = Symbol('body');

/** An envelope whose size and shape passed, not yet verified: what a receiver may look at first. */
export interface PeekedEnvelope {
  readonly kind: string;
  readonly from: string;
  readonly ts: number;
  readonly id: string;
  readonly [WIRE]: WireEnvelope;
  /** The plaintext body once {@link peekBody} parsed it; {@link openPeeked} does not parse it again. */
  [BODY]?: { value: unknown };
}

/**
 * The body of a peeked envelope, parsed; undefined when it is encrypted or not JSON. NOT
 * authenticated: a receiver may use it only to drop what it would drop after verifying anyway (a
 * decision it already holds, whose copy a verify would only confirm), never to act on it.
 */
export function peekBody(peeked: PeekedEnvelope): unknown {
  const w = peeked[WIRE];
  if (w.enc) return undefined;
  if (!peeked[BODY]) {
    let value: unknown;
    try {
      value = JSON.parse(w.body);
    } catch {
      value = undefined;
    }
    peeked[BODY] = { value };
  }
  return peeked[BODY].value;
}

/**
 * The cheap half of {@link open}: size, JSON and shape, no signature. A receiver can refuse on the
 * header (wrong sender for the topic, over budget) before paying for a verify, then pass the
 * result to {@link openPeeked} without parsing the JSON again. Nothing here is authenticated.
 */
export function peek(
  bytes: Buffer | Uint8Array | string,
  maxBytes = DEFAULT_MAX_ENVELOPE_BYTES,
): { ok: true; env: PeekedEnvelope } | { ok: false; reason: DropReason } {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (size > maxBytes) return { ok: false, reason: 'too-large' };
  if (!framedAsObject(bytes)) return { ok: false, reason: 'malformed' };
  let raw: unknown;
  try {
    raw = JSON.parse(typeof bytes === 'string' ? bytes : utf8(bytes));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const shape = checkShape(raw);
  if (shape !== 'ok') return { ok: false, reason: shape };
  const w = raw as WireEnvelope;
  return { ok: true, env: { kind: w.kind, from: w.from, ts: w.ts, id: w.id, [WIRE]: w } };
}

/** Text of received bytes, without the copy `Buffer.from(buffer)` would make. */
function utf8(bytes: Buffer | Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.toString('utf8');
}

const isJsonSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Whether the bytes can be a JSON object at all: `{` first and `}` last, JSON whitespace aside.
 * Junk fails here instead of in JSON.parse, whose SyntaxError (with its stack trace) costs more
 * than a valid message's parse: a node flooding the bus with junk pays the hub almost nothing.
 */
function framedAsObject(bytes: Buffer | Uint8Array | string): boolean {
  const at = typeof bytes === 'string' ? (i: number) => bytes.charCodeAt(i) : (i: number) => bytes[i];
  let first = 0;
  let last = bytes.length - 1;
  while (first <= last && isJsonSpace(at(first))) first++;
  while (last > first && isJsonSpace(at(last))) last--;
  return first < last && at(first) === 0x7b && at(last) === 0x7d;
}

/**
 * Checks an envelope from the bus: size, shape, kind, time window, sender, signature, replay,
 * then decrypts and parses the body. Never throws on hostile input: a refusal is a reason.
 * The id enters the replay cache only once the signature is valid, so forged messages cannot
 * poison it.
 */
export function open(bytes: Buffer | Uint8Array | string, opts: OpenOptions): OpenResult {
  const p = peek(bytes, opts.maxBytes);
  if (!p.ok) {
    opts.drops?.inc(p.reason);
    return p;
  }
  return openPeeked(p.env, opts);
}

/** {@link open} for an envelope {@link peek} already took apart (its size was checked there). */
export function openPeeked(peeked: PeekedEnvelope, opts: OpenOptions): OpenResult {
  const drop = (reason: DropReason): OpenResult => {
    opts.drops?.inc(reason);
    return { ok: false, reason };
  };
  const w = peeked[WIRE];
  if (opts.expectKind !== undefined) {
    const kinds: readonly string[] =
      typeof opts.expectKind === 'string' ? [opts.expectKind] : opts.expectKind;
    if (!kinds.includes(w.kind)) return drop('wrong-kind');
  }
  const now = (opts.now ?? Date.now)();
  const windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
  const outside = now - w.ts > windowMs ? 'expired' : w.ts - now > windowMs ? 'future' : undefined;
  const key = opts.keyFor(w.from);
  if (outside) {
    // Still refused; but a good signature means a real node with a wrong clock, so say by how
    // much. A forged one costs the same verify an in-window forgery would.
    opts.drops?.inc(outside);
    if (key && goodSignature(w, key))
      return { ok: false, reason: outside, skew: { from: w.from, ms: w.ts - now } };
    return { ok: false, reason: outside };
  }
  if (!key) return drop('unknown-sender');
  if (!goodSignature(w, key)) return drop('bad-signature');
  const header = headerOf(w.kind, w.from, w.ts, w.id);
  let json = w.body;
  if (opts.decryptKey) {
    if (!w.enc) return drop('unencrypted');
    const plain = decrypt(w, header, opts.decryptKey);
    if (plain === null) return drop('undecryptable');
    json = plain;
  } else if (w.enc) {
    return drop('undecryptable');
  }
  let body: unknown;
  const parsed = json === w.body ? peeked[BODY] : undefined;
  if (parsed && parsed.value !== undefined) body = parsed.value;
  else
    try {
      body = JSON.parse(json);
    } catch {
      return drop('malformed');
    }
  // Last: only a message that is otherwise acceptable uses a slot in the cache.
  if (!opts.replay.check(w.id, w.ts + windowMs + 1, now)) return drop('replay');
  return { ok: true, env: { v: 1, kind: w.kind, from: w.from, ts: w.ts, id: w.id, body, sig: w.sig } };
}

/** A new random AES-256 key for body encryption. */
export function generateEncryptionKey(): Buffer {
  return randomBytes(32);
}

/** Parses a body-encryption key written as base64 (32 bytes), e.g. from `bus.encryptionKey`. */
export function encryptionKeyFromText(text: string): Buffer {
  const raw = B64_RE.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (raw.length !== 32) throw new RampartError('E_CONFIG', 'encryption key must be base64 of 32 bytes');
  return raw;
}

function goodSignature(w: WireEnvelope, key: KeyObject): boolean {
  const sig = Buffer.from(w.sig, 'base64');
  try {
    // Only the canonical base64 of the 64 bytes: the decoder also takes a dropped `=` or changed
    // unused low bits, which would let anyone re-spell a valid signature (a "new" envelope).
    return (
      sig.length === 64 &&
      sig.toString('base64') === w.sig &&
      verify(null, signingInput(headerOf(w.kind, w.from, w.ts, w.id), w.enc, w.body), key, sig)
    );
  } catch {
    return false;
  }
}

function headerOf(kind: string, from: string, ts: number, id: string): string {
  return `${SIG_PREFIX}|1|${kind}|${from}|${ts}|${id}`;
}

/**
 * The bytes a signature covers, `header|enc|body`, written into a buffer reused from call to call
 * (valid until the next call; signing and verifying are synchronous). A `decisions` envelope's
 * input is a few hundred KiB: a fresh buffer of that size, plus the flat string a template literal
 * would build first, is memory touched for the first time on every envelope, and first touches
 * (page faults) were a large part of an agent's CPU per decision on the bus path (ADR 0044).
 */
function signingInput(header: string, enc: WireEnvelope['enc'], body: string): Buffer {
  const e = enc ? `${enc.alg}:${enc.iv}:${enc.tag}` : '';
  // header and e are ASCII (checked shapes); the body takes at most 3 bytes per UTF-16 unit.
  const most = header.length + e.length + 2 + body.length * 3;
  let buf = scratch;
  if (most > buf.length) {
    // Doubling: envelopes that each grow by a few bytes must not each get a new buffer.
    if (most <= SCRATCH_MAX) {
      buf = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(most, 2 * buf.length)));
      scratch = buf;
    } else buf = Buffer.allocUnsafeSlow(header.length + e.length + 2 + Buffer.byteLength(body));
  }
  let n = buf.write(header, 0, 'latin1');
  buf[n++] = 0x7c;
  n += buf.write(e, n, 'latin1');
  buf[n++] = 0x7c;
  n += buf.write(body, n, 'utf8');
  return buf.subarray(0, n);
}

/** Grown to the largest input seen, up to SCRATCH_MAX (a 1 MiB envelope's body at 3 bytes a unit). */
let scratch = Buffer.allocUnsafeSlow(0);
const SCRATCH_MAX = 4 * 1024 * 1024;

function checkShape(raw: unknown): 'ok' | 'malformed' | 'unsigned' {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'malformed';
  const w = raw as Record<string, unknown>;
  if (w.v !== 1) return 'malformed';
  if (typeof w.kind !== 'string' || !KIND_RE.test(w.kind)) return 'malformed';
  if (typeof w.from !== 'string' || !NAME_RE.test(w.from)) return 'malformed';
  if (typeof w.ts !== 'number' || !Number.isSafeInteger(w.ts) || w.ts < 0) return 'malformed';
  if (typeof w.id !== 'string' || !ID_RE.test(w.id)) return 'malformed';
  if (typeof w.body !== 'string') return 'malformed';
  if (w.enc !== undefined) {
    const e = w.enc as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || e.alg !== 'A256GCM') return 'malformed';
    if (typeof e.iv !== 'string' || !B64_RE.test(e.iv) || typeof e.tag !== 'string' || !B64_RE.test(e.tag)) {
      return 'malformed';
    }
  }
  if (w.sig === undefined || w.sig === null || w.sig === '') return 'unsigned';
  if (typeof w.sig !== 'string' || !B64_RE.test(w.sig)) return 'malformed';
  return 'ok';
}

function decrypt(w: WireEnvelope, header: string, key: Buffer): string | null {
  if (!w.enc) return null;
  try {
    const iv = Buffer.from(w.enc.iv, 'base64');
    // A short tag would make forgery cheaper: accept exactly the 16 bytes seal() writes.
    if (iv.length !== 12 || Buffer.from(w.enc.tag, 'base64').length !== 16) return null;
    const decipher = createDecipheriv('aes-256-gcm', checkAesKey(key), iv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(header));
    decipher.setAuthTag(Buffer.from(w.enc.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(w.body, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}

function checkAesKey(key: Buffer): Buffer {
  if (key.length !== 32) throw new RampartError('E_CONFIG', 'encryption key must be 32 bytes (AES-256)');
  return key;
}

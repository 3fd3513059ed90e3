import { type Target, tryParseTarget } from '../../core/address.js';

/**
 * The fail2ban-zmq-tools wire frame: one ZeroMQ frame of UTF-8 text,
 * `[token|]hostname|jail|Action|attacker`. The publisher answers a good one with the frame
 * minus the token (its ACK) and `NAK` otherwise, and broadcasts `hostname|jail|Action|attacker`.
 */
export interface ClusterMessage {
  hostname: string;
  jail: string;
  /** As sent (`Ban`, `Unban`, `UnBan`, any case); see {@link isBan}. */
  action: string;
  attacker: string;
  target: Target;
}

/**
 * The largest frame taken by default. The original meant 64 bytes (ZMQ_MAXMSGSIZE) but set the
 * option after bind(), where libzmq ignores it, so its clusters really carry longer frames (a
 * 36-character token and a long host name are common): refusing them would break a drop-in.
 * 1024 bytes holds any valid frame with a sane token; `[publisher] maxframebytes = 64` restores
 * the intended limit.
 */
export const MAX_FRAME_BYTES = 1024;
/** What the original's authors intended (see {@link MAX_FRAME_BYTES}). */
export const ORIGINAL_INTENDED_LIMIT = 64;
export const NAK = 'NAK';

export type Refusal =
  | 'oversized'
  | 'empty'
  | 'not-utf8'
  | 'field-count'
  | 'bad-token'
  | 'bad-hostname'
  | 'bad-action'
  | 'bad-attacker'
  | 'bad-jail'
  | 'multipart';

export type Checked = { ok: true; message: ClusterMessage; text: string } | { ok: false; reason: Refusal };

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** The original's hostname rule (RFC 1123 labels, one trailing dot allowed), ASCII only. */
export function validHostname(h: string): boolean {
  if (h.length === 0 || h.length > 255) return false;
  const name = h.endsWith('.') ? h.slice(0, -1) : h;
  return name.split('.').every((l) => LABEL.test(l));
}

/** `[A-Za-z0-9_-]*`: the original allows an empty jail name, and so does the wire. */
export function validJail(j: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(j);
}

export function validAction(a: string): boolean {
  return /^(ban|unban)$/i.test(a);
}

export function isBan(a: string): boolean {
  return a.toLowerCase() === 'ban';
}

/**
 * The attacker: strict dotted-quad IPv4 or IPv6 text. The original used inet_aton, which also
 * takes `127.1`, `0x7f.0.0.1` and `1.2.3.4 anything`; those are refused here (a later tool may
 * read them differently), and IPv6, which the original refused, is accepted.
 */
export function parseAttacker(a: string): Target | null {
  if (a.includes('/') || /\s/.test(a)) return null;
  return tryParseTarget(a);
}

/** The four fields after the token, checked in the original's order. */
function checkFields(f: string[]): Checked {
  const [hostname, jail, action, attacker] = f as [string, string, string, string];
  if (!validHostname(hostname)) return { ok: false, reason: 'bad-hostname' };
  if (!validAction(action)) return { ok: false, reason: 'bad-action' };
  const target = parseAttacker(attacker);
  if (!target) return { ok: false, reason: 'bad-attacker' };
  if (!validJail(jail)) return { ok: false, reason: 'bad-jail' };
  return { ok: true, message: { hostname, jail, action, attacker, target }, text: f.join('|') };
}

/**
 * The publisher's checks on a frame from a monitor. With auth on, five fields and the token
 * first; with auth off, four fields (a fifth is tolerated and ignored, as the original did).
 * `text` is the answer the original gave: the frame with the token removed.
 */
export function checkRequest(
  frame: Buffer,
  auth: { on: boolean; token: string },
  maxBytes = MAX_FRAME_BYTES,
): Checked {
  if (frame.length === 0) return { ok: false, reason: 'empty' };
  if (frame.length > maxBytes) return { ok: false, reason: 'oversized' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(frame);
  } catch {
    return { ok: false, reason: 'not-utf8' };
  }
  const parts = text.split('|');
  if (parts.length < 4 || parts.length > 5) return { ok: false, reason: 'field-count' };
  if (auth.on) {
    if (parts[0] !== auth.token) return { ok: false, reason: 'bad-token' };
    // The original crashed on a good token followed by only three fields.
    if (parts.length !== 5) return { ok: false, reason: 'field-count' };
    return checkFields(parts.slice(1));
  }
  const r = checkFields(parts.slice(0, 4));
  // Without auth the original echoed (and broadcast) the frame exactly as received.
  return r.ok ? { ...r, text } : r;
}

/** The subscriber's checks on a broadcast: the same rules, no token, no size limit of its own. */
export function checkBroadcast(frame: Buffer): Checked {
  if (frame.length === 0) return { ok: false, reason: 'empty' };
  if (frame.length > 4096) return { ok: false, reason: 'oversized' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(frame);
  } catch {
    return { ok: false, reason: 'not-utf8' };
  }
  const parts = text.split('|');
  if (parts.length < 4 || parts.length > 5) return { ok: false, reason: 'field-count' };
  return checkFields(parts.slice(0, 4));
}

/** What a monitor sends. */
export function encodeRequest(
  m: Omit<ClusterMessage, 'target'>,
  auth: { on: boolean; token: string },
): string {
  const body = `${m.hostname}|${m.jail}|${m.action}|${m.attacker}`;
  return auth.on ? `${auth.token}|${body}` : body;
}

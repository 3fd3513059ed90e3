import { parseIPv4, parseIPv6, parseTarget, type Target } from '../../core/address.js';

/**
 * vallumd's wire format (INTEROP.md): a message on `SET/add`, `SET/del` or bare `SET` carries one
 * address as its whole payload. The topic is split at its FIRST `/`: what comes before names the
 * ipset, everything after is the action, compared case-sensitively, so `SET/ADD`, `SET/add/x`
 * and `SET/` are ignored, as vallumd ignores them.
 */
export type VallumdAction = 'add' | 'del';

export interface VallumdTopic {
  set: string;
  action: VallumdAction;
}

/** The set and action a message topic names, or null when vallumd would ignore the message. */
export function parseTopic(topic: string): VallumdTopic | null {
  const slash = topic.indexOf('/');
  const set = slash < 0 ? topic : topic.slice(0, slash);
  const action = slash < 0 ? 'add' : topic.slice(slash + 1);
  if (action !== 'add' && action !== 'del') return null;
  return { set, action };
}

/** The topic a fleet decision goes out on, for vallumd nodes subscribed to `base`. */
export function formatTopic(base: string, action: VallumdAction): string {
  return `${base}/${action}`;
}

export type VallumdPayload =
  | { kind: 'empty' }
  | { kind: 'address'; target: Target }
  /** `shown` is the payload made printable (at most 64 characters) for the one log line. */
  | { kind: 'invalid'; shown: string; why: string };

/**
 * Parses a payload as vallumd's `inet_pton` check does: a dot means IPv4 (so `::ffff:1.2.3.4`
 * and every other IPv6 form with a dotted tail are refused), dotted quads without leading zeros,
 * IPv6 without a zone, nothing else in the payload (no newline, space, CIDR or host name).
 * An empty payload is ignored, as vallumd ignores it. One difference, on purpose: vallumd reads
 * the payload as a C string, so `192.0.2.1\0junk` would ban 192.0.2.1; here a NUL makes the
 * payload invalid (binary is never an address).
 */
export function parsePayload(payload: Buffer): VallumdPayload {
  if (payload.length === 0) return { kind: 'empty' };
  const shown = printable(payload);
  if (payload.length > 45) return { kind: 'invalid', shown, why: 'longer than any address' };
  for (const byte of payload) {
    if (byte <= 0x20 || byte >= 0x7f) return { kind: 'invalid', shown, why: 'not a bare address' };
  }
  const text = payload.toString('latin1');
  const ok = text.includes('.') ? parseIPv4(text) !== null : parseIPv6(text) !== null;
  if (!ok) return { kind: 'invalid', shown, why: 'not a valid IP address' };
  return { kind: 'address', target: parseTarget(text) };
}

function printable(payload: Buffer): string {
  return JSON.stringify(payload.subarray(0, 64).toString('latin1')).slice(1, -1);
}

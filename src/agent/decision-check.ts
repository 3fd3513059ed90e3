import type { Decision } from '../core/decision.js';

/**
 * Checks the shape of a decision body from the bus. The signature proves the hub sent it, but a
 * hub of another version, or a bug, must not crash the agent or poison its state. The parsed body
 * is normalised in place and becomes the Decision: no second object per decision on the bus path
 * (ADR 0044). Fields it does not know stay on it, unread.
 */
export function checkDecision(body: unknown): Decision | null {
  if (typeof body !== 'object' || body === null) return null;
  const d = body as Record<string, unknown>;
  if (!Number.isSafeInteger(d.seq) || (d.seq as number) < 1) return null;
  if (d.action !== 'ban' && d.action !== 'unban') return null;
  if (typeof d.target !== 'string' || d.target.length > 64) return null;
  if (d.expiresAt !== null && typeof d.expiresAt !== 'number') return null;
  if (d.set !== undefined && typeof d.set !== 'string') return null;
  if (typeof d.id !== 'string') d.id = '';
  if (d.family !== 6 && d.family !== 4) d.family = 4;
  if (typeof d.duration !== 'number') d.duration = null;
  if (typeof d.reason !== 'string') d.reason = '';
  if (typeof d.rule !== 'string') d.rule = '';
  if (typeof d.origin !== 'string') d.origin = '';
  if (typeof d.createdAt !== 'number') d.createdAt = 0;
  if (!d.set) d.set = 'blocklist';
  return d as unknown as Decision;
}

import type { Decision } from '../core/decision.js';

/**
 * Checks the shape of a decision body from the bus. The signature proves the hub sent it, but a
 * hub of another version, or a bug, must not crash the agent or poison its state.
 */
export function checkDecision(body: unknown): Decision | null {
  if (typeof body !== 'object' || body === null) return null;
  const d = body as Record<string, unknown>;
  if (!Number.isSafeInteger(d.seq) || (d.seq as number) < 1) return null;
  if (d.action !== 'ban' && d.action !== 'unban') return null;
  if (typeof d.target !== 'string' || d.target.length > 64) return null;
  if (d.expiresAt !== null && typeof d.expiresAt !== 'number') return null;
  if (d.set !== undefined && typeof d.set !== 'string') return null;
  return {
    id: typeof d.id === 'string' ? d.id : '',
    seq: d.seq as number,
    action: d.action,
    target: d.target,
    family: d.family === 6 ? 6 : 4,
    duration: typeof d.duration === 'number' ? d.duration : null,
    expiresAt: d.expiresAt as number | null,
    reason: typeof d.reason === 'string' ? d.reason : '',
    rule: typeof d.rule === 'string' ? d.rule : '',
    origin: typeof d.origin === 'string' ? d.origin : '',
    createdAt: typeof d.createdAt === 'number' ? d.createdAt : 0,
    set: typeof d.set === 'string' && d.set ? d.set : 'blocklist',
  };
}

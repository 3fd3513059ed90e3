import type { DurationSeconds } from './duration.js';

export type Action = 'ban' | 'unban';

/**
 * One entry of the hub's ordered decision log. `seq` has no gaps; agents remember the last one
 * they applied. Times are epoch milliseconds; `expiresAt` is null for a permanent ban and for
 * unbans.
 */
export interface Decision {
  id: string;
  seq: number;
  action: Action;
  /** Canonical address or CIDR text (see core/address.ts). */
  target: string;
  family: 4 | 6;
  duration: DurationSeconds;
  expiresAt: number | null;
  reason: string;
  rule: string;
  /** The node that reported it, or `operator`/`api` for manual decisions. */
  origin: string;
  createdAt: number;
  /** Logical set name the ban goes to (default `blocklist`); backends map it to kernel sets. */
  set: string;
}

/** Every field of a {@link Decision}, in its order (the HTTP schema's `required`, the packed columns). */
export const DECISION_FIELDS = [
  'id',
  'seq',
  'action',
  'target',
  'family',
  'duration',
  'expiresAt',
  'reason',
  'rule',
  'origin',
  'createdAt',
  'set',
] as const satisfies ReadonlyArray<keyof Decision>;

export const DEFAULT_SET = 'blocklist';

/** Seconds left before a ban expires (null = permanent, 0 = already expired). */
export function remainingSeconds(expiresAt: number | null, now = Date.now()): DurationSeconds {
  if (expiresAt === null) return null;
  return Math.max(0, Math.ceil((expiresAt - now) / 1000));
}

import type { Decision } from '../core/decision.js';
import type { NodeRecord } from './types.js';

/** Column names shared by the SQLite and PostgreSQL schemas, and their mapping to records. */
export interface DecisionRow {
  seq: number;
  id: string;
  action: string;
  target: string;
  family: number;
  duration: number | null;
  expires_at: number | null;
  reason: string;
  rule: string;
  origin: string;
  created_at: number;
  set_name: string;
}

export interface NodeRow {
  name: string;
  public_key: string | null;
  token_hash: string | null;
  join_secret_hash: string | null;
  created_at: number;
  removed_at: number | null;
  last_seq: number;
  last_seen: number | null;
  version: string | null;
  reads: string | null;
}

export function toDecision(r: DecisionRow): Decision {
  return {
    id: r.id,
    seq: r.seq,
    action: r.action === 'unban' ? 'unban' : 'ban',
    target: r.target,
    family: r.family === 6 ? 6 : 4,
    duration: r.duration,
    expiresAt: r.expires_at,
    reason: r.reason,
    rule: r.rule,
    origin: r.origin,
    createdAt: r.created_at,
    set: r.set_name,
  };
}

export function toNode(r: NodeRow): NodeRecord {
  return {
    name: r.name,
    publicKey: r.public_key,
    tokenHash: r.token_hash,
    joinSecretHash: r.join_secret_hash,
    createdAt: r.created_at,
    removedAt: r.removed_at,
    lastSeq: r.last_seq,
    lastSeen: r.last_seen,
    version: r.version,
    reads: r.reads ?? null,
  };
}

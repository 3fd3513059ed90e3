import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BouncerRecord, Store } from '../store/types.js';

export type Caller = { role: 'admin' } | { role: 'metrics' } | { role: 'node'; name: string };

export const NODE_TOKEN_PREFIX = 'rpn1.';
export const BOUNCER_KEY_PREFIX = 'rpb1.';

/** A new read-only key for a CrowdSec bouncer; the hub keeps only {@link tokenHash} of it. */
export function newBouncerKey(): string {
  return BOUNCER_KEY_PREFIX + randomBytes(24).toString('base64url');
}

/** A new bearer token for a node; the hub keeps only {@link tokenHash} of it. */
export function newNodeToken(): string {
  return NODE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Resolves an `Authorization: Bearer T` header to a caller: the admin token, or the token of an
 * enrolled, not removed node. Comparison is on hashes in constant time.
 */
export class Authenticator {
  private readonly adminHash: Buffer;
  private readonly metricsHash: Buffer | undefined;

  /** `metricsToken`: a read-only token that opens `/metrics` and nothing else. */
  constructor(
    adminToken: string,
    private readonly store: Store,
    metricsToken?: string,
  ) {
    this.adminHash = Buffer.from(tokenHash(adminToken), 'hex');
    this.metricsHash = metricsToken ? Buffer.from(tokenHash(metricsToken), 'hex') : undefined;
  }

  async resolve(header: string | undefined): Promise<Caller | undefined> {
    if (!header) return undefined;
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
    if (!m) return undefined;
    const hash = tokenHash(m[1]!);
    const given = Buffer.from(hash, 'hex');
    if (timingSafeEqual(given, this.adminHash)) return { role: 'admin' };
    if (this.metricsHash && timingSafeEqual(given, this.metricsHash)) return { role: 'metrics' };
    const node = await this.store.nodeByTokenHash(hash);
    return node ? { role: 'node', name: node.name } : undefined;
  }

  /** Resolves a bouncer's `X-Api-Key` (looked up by its hash, so the key is never stored). */
  async bouncer(key: string): Promise<BouncerRecord | undefined> {
    if (key.length === 0 || key.length > 512) return undefined;
    return this.store.bouncerByKeyHash(tokenHash(key.trim()));
  }
}

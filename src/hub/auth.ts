import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { BouncerRecord, Store } from '../store/types.js';

export type Caller =
  | { role: 'admin' }
  | { role: 'metrics' }
  /** Reads what the dashboard shows (bans, nodes, allowlist, status); changes nothing. */
  | { role: 'viewer' }
  | { role: 'node'; name: string };

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
  private readonly viewerHash: Buffer | undefined;

  /**
   * `metricsToken`: a read-only token that opens `/metrics` and nothing else. `viewerToken`: a
   * read-only token for the dashboard (routes marked `viewer`, GET only).
   */
  constructor(
    adminToken: string,
    private readonly store: Store,
    metricsToken?: string,
    viewerToken?: string,
  ) {
    this.adminHash = Buffer.from(tokenHash(adminToken), 'hex');
    this.metricsHash = metricsToken ? Buffer.from(tokenHash(metricsToken), 'hex') : undefined;
    this.viewerHash = viewerToken ? Buffer.from(tokenHash(viewerToken), 'hex') : undefined;
  }

  async resolve(header: string | undefined): Promise<Caller | undefined> {
    if (!header) return undefined;
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
    return m ? this.token(m[1]!) : undefined;
  }

  /** Resolves a bare token (the bearer's, or the one typed in the dashboard's login form). */
  async token(token: string): Promise<Caller | undefined> {
    if (token.length === 0 || token.length > 512) return undefined;
    const hash = tokenHash(token);
    const given = Buffer.from(hash, 'hex');
    if (timingSafeEqual(given, this.adminHash)) return { role: 'admin' };
    if (this.metricsHash && timingSafeEqual(given, this.metricsHash)) return { role: 'metrics' };
    if (this.viewerHash && timingSafeEqual(given, this.viewerHash)) return { role: 'viewer' };
    const node = await this.store.nodeByTokenHash(hash);
    return node ? { role: 'node', name: node.name } : undefined;
  }

  /** Resolves a bouncer's `X-Api-Key` (looked up by its hash, so the key is never stored). */
  async bouncer(key: string): Promise<BouncerRecord | undefined> {
    if (key.length === 0 || key.length > 512) return undefined;
    return this.store.bouncerByKeyHash(tokenHash(key.trim()));
  }
}

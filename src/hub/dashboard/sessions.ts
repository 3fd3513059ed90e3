import { randomBytes, timingSafeEqual } from 'node:crypto';
import { tokenHash } from '../auth.js';

/** Who a dashboard session acts as: the admin, or the read-only viewer. */
export type SessionRole = 'admin' | 'viewer';

export interface Session {
  role: SessionRole;
  /** Sent back by the page in `X-Rampart-CSRF` on every state-changing call. */
  csrf: string;
  expiresAt: number;
}

/** The cookie that carries the session id; HttpOnly, so page scripts never see it. */
export const SESSION_COOKIE = 'rampart_session';
export const CSRF_HEADER = 'x-rampart-csrf';

/** A login lasts this long, then the operator types the token again. */
export const SESSION_TTL_MS = 12 * 3_600_000;
/** Only a valid token opens a session, so this bounds memory even if a token leaks and is replayed. */
const MAX_SESSIONS = 10_000;

/**
 * Dashboard sessions, in memory: a hub restart logs everyone out, which is what an operator who
 * rotated the admin token (delete the file, restart) wants. Ids are kept as hashes so a heap dump
 * does not hand out live sessions. Several hubs behind one name each keep their own sessions;
 * a browser sticks to one hub per login.
 */
export class SessionStore {
  private readonly byHash = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Opens a session; returns the cookie value (the id) and the session. */
  create(role: SessionRole): { id: string; session: Session } {
    this.sweep();
    if (this.byHash.size >= MAX_SESSIONS) {
      // Oldest first: a Map iterates in insertion order.
      const oldest = this.byHash.keys().next().value;
      if (oldest !== undefined) this.byHash.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session = {
      role,
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: this.now() + SESSION_TTL_MS,
    };
    this.byHash.set(tokenHash(id), session);
    return { id, session };
  }

  /** The live session for a cookie value, if any. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 128) return undefined;
    const key = tokenHash(id);
    const s = this.byHash.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byHash.delete(key);
      return undefined;
    }
    return s;
  }

  delete(id: string | undefined): void {
    if (id && id.length <= 128) this.byHash.delete(tokenHash(id));
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, s] of this.byHash) if (s.expiresAt <= now) this.byHash.delete(k);
  }
}

/** Constant-time check of the page's CSRF header against its session's token. */
export function csrfMatches(session: Session, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const given = Buffer.from(header);
  const want = Buffer.from(session.csrf);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** The value of one cookie in a `Cookie` header (no dependency for one name). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Set-Cookie for a session (`id`), or one that clears it (`undefined`). */
export function sessionCookie(id: string | undefined, secure: boolean): string {
  const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  const maxAge = id ? Math.floor(SESSION_TTL_MS / 1000) : 0;
  return [`${SESSION_COOKIE}=${id ?? ''}`, `Max-Age=${maxAge}`, ...attrs].join('; ');
}

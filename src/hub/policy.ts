import { assertBannable, parseTarget, type Target } from '../core/address.js';
import type { Allowlist } from '../core/allowlist.js';
import { DEFAULT_SET, type Decision } from '../core/decision.js';
import { type DurationSeconds, MAX_DURATION_SECONDS } from '../core/duration.js';
import { RampartError } from '../core/errors.js';
import { assertSetName, isSetName, SET_NAME_RULE } from '../core/set-name.js';
import type { DecisionInput } from '../store/types.js';
import type { FleetPolicyConfig } from './fleet-policy.js';
import { NodeRateLimiter } from './rate-limit.js';

/** What a node reports (the body of a `report` envelope). */
export interface ReportBody {
  target: string;
  rule: string;
  reason: string;
  hits: number;
  /** The rule's bantime in seconds, or null for permanent; the hub escalates from it. */
  duration: DurationSeconds;
  /** When the node detected it (epoch ms); informational. */
  at: number;
  set?: string;
}

export interface PolicyConfig {
  /** Ban length when a report carries none (seconds, null = permanent). Default 1 h. */
  bantime: DurationSeconds;
  /** Each earlier ban of the address, anywhere in the fleet, multiplies the ban by this. Default 2. */
  multiplier: number;
  /** Escalation stops here (seconds); null lets it grow without bound. Default 1 week. */
  maxBantime: DurationSeconds;
  /** Per-node budget of new decisions: `burst` at once, refilled at `perMinute`. */
  rateBurst: number;
  ratePerMinute: number;
  /** Broadest range a report or operator may ban (core/address assertBannable). */
  minPrefix4: number;
  minPrefix6: number;
  /** Fleet-wide counting (hub/fleet-policy.ts); its bans go through this policy as node `fleet`. */
  fleet?: Partial<FleetPolicyConfig>;
}

export const DEFAULT_POLICY: PolicyConfig = {
  bantime: 3600,
  multiplier: 2,
  maxBantime: 7 * 86400,
  rateBurst: 100,
  ratePerMinute: 600,
  minPrefix4: 16,
  minPrefix6: 32,
};

export type RefusalReason = 'invalid' | 'unbannable' | 'allowlisted' | 'rate-limited' | 'protected';

export type Verdict =
  | { kind: 'ban'; input: DecisionInput; target: Target; extends: boolean }
  | { kind: 'duplicate'; existing: Decision }
  | { kind: 'refused'; reason: RefusalReason; message: string };

/** What the hub knows about the address when a report arrives. */
export interface PolicyContext {
  now: number;
  allowlist: Allowlist;
  /** The ban in force for this target and set, if any. */
  active: (target: string, set: string) => Decision | undefined;
  /** Earlier bans of the address fleet-wide, not counting one still in force. */
  previousBans: (target: string) => number;
}

const MAX_TEXT = 256;

/**
 * Turns reports into decisions: validation, allowlist, never-bannable ranges, de-duplication,
 * per-node rate limits and fleet-wide escalation. Holds no I/O: the hub looks up the context
 * first, so every rule here is unit-tested with plain values.
 */
export class Policy {
  readonly config: PolicyConfig;
  private readonly limiter: NodeRateLimiter;

  constructor(config: Partial<PolicyConfig> = {}) {
    this.config = { ...DEFAULT_POLICY, ...config };
    this.limiter = new NodeRateLimiter(this.config.rateBurst, this.config.ratePerMinute);
  }

  /** Parses the target and set of an untrusted report body, or explains why it is invalid. */
  static parse(body: unknown): { report: ReportBody; target: Target; set: string } | { error: string } {
    if (typeof body !== 'object' || body === null) return { error: 'report body is not an object' };
    const b = body as Record<string, unknown>;
    if (typeof b.target !== 'string') return { error: 'report.target must be a string' };
    let target: Target;
    try {
      target = parseTarget(b.target);
    } catch (err) {
      return { error: `report.target: ${(err as Error).message}` };
    }
    const set = b.set === undefined || b.set === null ? DEFAULT_SET : b.set;
    if (!isSetName(set)) return { error: `report.set must be a valid set name (${SET_NAME_RULE})` };
    const duration = b.duration ?? null;
    if (
      duration !== null &&
      (typeof duration !== 'number' || !(duration > 0 && duration <= MAX_DURATION_SECONDS))
    ) {
      return {
        error: `report.duration must be a positive number of seconds (at most ${MAX_DURATION_SECONDS}) or null`,
      };
    }
    const report: ReportBody = {
      target: target.text,
      rule: text(b.rule, 'report'),
      reason: text(b.reason, ''),
      hits: typeof b.hits === 'number' && Number.isFinite(b.hits) ? b.hits : 0,
      duration: duration === null ? null : Math.round(duration),
      at: typeof b.at === 'number' ? b.at : 0,
      set,
    };
    return { report, target, set };
  }

  /** Decides what a node's report becomes. `report.duration` undefined means "use the default bantime". */
  evaluate(node: string, body: unknown, ctx: PolicyContext): Verdict {
    const parsed = Policy.parse(body);
    if ('error' in parsed) return { kind: 'refused', reason: 'invalid', message: parsed.error };
    const { report, target, set } = parsed;
    const refusal = this.bannable(target, ctx.allowlist);
    if (refusal) return refusal;
    const base =
      (body as { duration?: unknown }).duration === undefined ? this.config.bantime : report.duration;
    const existing = ctx.active(target.text, set);
    const prev = ctx.previousBans(target.text);
    const duration = this.escalate(base, prev);
    const expiresAt = duration === null ? null : ctx.now + duration * 1000;
    // Ten nodes reporting one attacker within seconds must make one decision, so a ban in force is
    // only extended when the new one ends clearly later (a longer rule, or a quarter of it served).
    const slack = Math.max(60_000, ((duration ?? 0) * 1000) / 4);
    if (existing && !outlasts(expiresAt, existing.expiresAt, slack)) return { kind: 'duplicate', existing };
    if (!this.limiter.take(node, ctx.now)) {
      return { kind: 'refused', reason: 'rate-limited', message: `node ${node} is over its decision budget` };
    }
    const reason = report.reason || `${report.rule}: ${report.hits} hits`;
    return {
      kind: 'ban',
      target,
      extends: existing !== undefined,
      input: {
        action: 'ban',
        target: target.text,
        family: target.family,
        duration,
        expiresAt,
        reason: prev > 0 ? `${reason} (repeat offender: ban ${prev + 1})` : reason,
        rule: report.rule,
        origin: node,
        createdAt: ctx.now,
        set,
      },
    };
  }

  /**
   * An operator's ban: no escalation, no rate limit, no de-duplication (the operator means it),
   * but the same never-ban checks. Throws E_UNBANNABLE or E_ADDRESS.
   */
  manual(
    req: { target: string; duration?: DurationSeconds; reason?: string; set?: string; origin?: string },
    allowlist: Allowlist,
    now: number,
    /** `req.target` parsed, when the caller has it already (it checks it again, as the hub's protected addresses). */
    target: Target = parseTarget(req.target),
  ): DecisionInput {
    const set = assertSetName(req.set ?? DEFAULT_SET);
    const refusal = this.bannable(target, allowlist);
    if (refusal) throw new RampartError('E_UNBANNABLE', refusal.message);
    const duration = req.duration === undefined ? this.config.bantime : req.duration;
    return {
      action: 'ban',
      target: target.text,
      family: target.family,
      duration,
      expiresAt: duration === null ? null : now + duration * 1000,
      reason: text(req.reason, 'manual ban'),
      rule: 'manual',
      origin: req.origin ?? 'operator',
      createdAt: now,
      set,
    };
  }

  /** ban × multiplier^previous, capped; a permanent base stays permanent. */
  escalate(base: DurationSeconds, previousBans: number): DurationSeconds {
    if (base === null) return null;
    const factor = this.config.multiplier ** Math.max(0, previousBans);
    const grown = Math.round(base * factor);
    const cap = this.config.maxBantime;
    // Past the longest finite ban the expiry is no longer exact: such a ban is permanent.
    if (cap === null) return grown <= MAX_DURATION_SECONDS ? grown : null;
    // Never shorten a rule's own bantime below what it asked for, even if above the cap.
    return Math.max(base, Math.min(grown, cap));
  }

  /** Whether `node` has decision budget left now (takes none; see NodeRateLimiter.has). */
  hasBudget(node: string, now: number): boolean {
    return this.limiter.has(node, now);
  }

  /** Forgets a removed node's rate-limit bucket. */
  forgetNode(node: string): void {
    this.limiter.forget(node);
  }

  private bannable(target: Target, allowlist: Allowlist): Extract<Verdict, { kind: 'refused' }> | undefined {
    const hit = allowlist.match(target);
    if (hit !== undefined) {
      return { kind: 'refused', reason: 'allowlisted', message: `${target.text} is allowlisted (${hit})` };
    }
    try {
      assertBannable(target, { minPrefix4: this.config.minPrefix4, minPrefix6: this.config.minPrefix6 });
    } catch (err) {
      return { kind: 'refused', reason: 'unbannable', message: (err as Error).message };
    }
    return undefined;
  }
}

/** True when a ban ending at `a` ends more than `slack` ms after one ending at `b` (null = never). */
/** True when a ban ending at `a` ends more than `slack` ms after one ending at `b` (null = never). */
export function outlasts(a: number | null, b: number | null, slack: number): boolean {
  if (b === null) return false;
  if (a === null) return true;
  return a > b + slack;
}

function text(v: unknown, fallback: string): string {
  if (typeof v !== 'string' || v === '') return fallback;
  return v.length > MAX_TEXT ? v.slice(0, MAX_TEXT) : v;
}

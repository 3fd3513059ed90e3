import type { Decision } from '../../core/decision.js';

/** One decision as CrowdSec's LAPI gives it to bouncers (the fields bouncers read). */
export interface CrowdsecDecision {
  id: number;
  origin: string;
  type: 'ban';
  scope: 'Ip' | 'Range';
  value: string;
  duration: string;
  scenario: string;
}

/** Permanent bans have no expiry in rampart; bouncers need a duration, so one year stands for it. */
const PERMANENT_SECONDS = 365 * 86_400;

/** A Go `time.Duration` string (`3h59m58s`), the format bouncers parse with `time.ParseDuration`. */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (h > 0) return `${h}h${m}m${rest}s`;
  if (m > 0) return `${m}m${rest}s`;
  return `${rest}s`;
}

/** A rampart ban as a CrowdSec decision: the log seq is the id, the rule the scenario. */
export function toCrowdsec(d: Decision, now: number): CrowdsecDecision {
  const seconds = d.expiresAt === null ? PERMANENT_SECONDS : (d.expiresAt - now) / 1000;
  return {
    id: d.seq,
    origin: d.origin,
    type: 'ban',
    // Canonical text has a prefix length only for ranges: no parse per decision on a 100k pull.
    scope: d.target.includes('/') ? 'Range' : 'Ip',
    value: d.target,
    duration: d.action === 'unban' ? '0s' : goDuration(seconds),
    scenario: d.rule,
  };
}

/** The stream's filters, parsed from comma lists (absent = no restriction). */
export interface StreamFilter {
  scopes?: Set<string>;
  origins?: Set<string>;
  containing?: string[];
  notContaining?: string[];
}

const list = (v: string | undefined) =>
  v === undefined || v.trim() === ''
    ? undefined
    : v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);

export function parseFilter(q: Record<string, string | undefined>): StreamFilter {
  const scopes = list(q.scopes);
  const origins = list(q.origins);
  return {
    ...(scopes ? { scopes: new Set(scopes.map((s) => s.toLowerCase())) } : {}),
    ...(origins ? { origins: new Set(origins) } : {}),
    ...(list(q.scenarios_containing) ? { containing: list(q.scenarios_containing) } : {}),
    ...(list(q.scenarios_not_containing) ? { notContaining: list(q.scenarios_not_containing) } : {}),
  };
}

export function matches(c: CrowdsecDecision, f: StreamFilter): boolean {
  if (f.scopes && !f.scopes.has(c.scope.toLowerCase())) return false;
  if (f.origins && !f.origins.has(c.origin)) return false;
  if (f.containing && !f.containing.some((s) => c.scenario.includes(s))) return false;
  if (f.notContaining?.some((s) => c.scenario.includes(s))) return false;
  return true;
}

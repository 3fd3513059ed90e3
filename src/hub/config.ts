import { z } from 'zod';
import { busConfigSchema } from '../bus/config.js';
import { busFromFlag } from '../bus/urls.js';
import type { RampartConfig } from '../config/schema.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { isSetName, SET_NAME_RULE } from '../core/set-name.js';
import { STORE_URL } from '../store/open.js';
import type { FleetRule } from './fleet-counter.js';
import type { FleetPolicyConfig } from './fleet-policy.js';
import type { HubOptions } from './hub.js';
import type { PolicyConfig } from './policy.js';

const duration = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  try {
    parseDuration(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** For a refinement after `duration`: an unparseable value was already reported there. */
function isFiniteDuration(v: string | number): boolean {
  try {
    return (parseDuration(v) ?? 0) > 0;
  } catch {
    return true;
  }
}

/** The `hub:` section of rampart.yaml. */
export const hubSectionSchema = z
  .object({
    listen: z.string().min(1).optional(),
    port: z.number().int().min(0).max(65535).optional(),
    /** URL other servers use to reach this hub (join tokens); default derived from listen/port. */
    publicUrl: z.url().optional(),
    /** How long the decision log keeps entries (agents further behind get a snapshot). Default 7d. */
    retention: duration.optional(),
    /** How long a join token printed by `rampart nodes add` stays valid. Default 24h. */
    joinTtl: duration.optional(),
    tls: z.object({ cert: z.string(), key: z.string() }).strict().optional(),
    /** `/v1/blocklist`: `public: true` serves it to anyone (default: a node, admin or bouncer key). */
    blocklist: z.object({ public: z.boolean().optional() }).strict().optional(),
    /** A postgres:// URL for several hubs on one database; default SQLite in the data folder. */
    store: z.string().regex(STORE_URL, 'expected postgres://user[:password]@host[:port]/database').optional(),
    policy: z
      .object({
        bantime: duration.optional(),
        multiplier: z.number().min(1).max(100).optional(),
        maxBantime: duration.optional(),
        rateBurst: z.number().int().min(1).optional(),
        ratePerMinute: z.number().min(0).optional(),
        minPrefix4: z.number().int().min(1).max(32).optional(),
        minPrefix6: z.number().int().min(1).max(128).optional(),
        fleet: z
          .strictObject({
            enabled: z.boolean().optional(),
            perNode: z.number().int().min(1).max(1000).optional(),
            minNodes: z.number().int().min(1).max(10_000).optional(),
            maxEntries: z.number().int().min(16).max(10_000_000).optional(),
            rules: z
              .record(
                z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'rule names use letters, digits, _ . -'),
                z.strictObject({
                  maxretry: z.number().int().min(1).max(100_000),
                  findtime: duration.refine(isFiniteDuration, { message: 'must be a finite duration' }),
                  bantime: duration.optional(),
                  set: z
                    .string()
                    .refine(isSetName, { message: `must be ${SET_NAME_RULE}` })
                    .optional(),
                }),
              )
              .optional(),
          })
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type HubSection = z.output<typeof hubSectionSchema>;

export interface ResolvedHubSection {
  listen?: string;
  port?: number;
  publicUrl?: string;
  retentionMs?: number;
  joinTtlMs?: number;
  tls?: { cert: string; key: string };
  store?: string;
  policy: Partial<PolicyConfig>;
  blocklistPublic?: boolean;
}

/** Validates `hub:` (already loaded as plain data) and converts durations; errors name `hub.KEY`. */
export function resolveHubSection(raw: unknown, file?: string): ResolvedHubSection {
  const r = hubSectionSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(issue.message, { file, key: ['hub', ...issue.path.map(String)].join('.') });
  }
  const h = r.data;
  const ms = (v: string | number | undefined) => {
    if (v === undefined) return undefined;
    const s = parseDuration(v);
    return s === null ? Number.MAX_SAFE_INTEGER : s * 1000;
  };
  const p = h.policy ?? {};
  const policy: Partial<PolicyConfig> = {};
  if (p.bantime !== undefined) policy.bantime = parseDuration(p.bantime);
  if (p.maxBantime !== undefined) policy.maxBantime = parseDuration(p.maxBantime);
  for (const k of ['multiplier', 'rateBurst', 'ratePerMinute', 'minPrefix4', 'minPrefix6'] as const) {
    if (p[k] !== undefined) policy[k] = p[k];
  }
  if (p.fleet !== undefined) policy.fleet = resolveFleetSection(p.fleet);
  return {
    listen: h.listen,
    port: h.port,
    publicUrl: h.publicUrl,
    retentionMs: ms(h.retention),
    joinTtlMs: ms(h.joinTtl),
    tls: h.tls,
    store: h.store,
    policy,
    blocklistPublic: h.blocklist?.public,
  };
}

function resolveFleetSection(f: NonNullable<NonNullable<HubSection['policy']>['fleet']>) {
  const out: Partial<FleetPolicyConfig> = {};
  for (const k of ['enabled', 'perNode', 'minNodes', 'maxEntries'] as const) {
    if (f[k] !== undefined) (out as Record<string, unknown>)[k] = f[k];
  }
  if (f.rules !== undefined) {
    const rules: Record<string, FleetRule> = {};
    for (const [name, r] of Object.entries(f.rules)) {
      rules[name] = { maxretry: r.maxretry, findtime: parseDuration(r.findtime) as number };
      if (r.bantime !== undefined) rules[name].bantime = parseDuration(r.bantime);
      if (r.set !== undefined) rules[name].set = r.set;
    }
    out.rules = rules;
  }
  return out;
}

/** Command-line flags that override the config file (`rampart hub`, `rampart up`). */
export interface HubFlagOverrides {
  dataDir: string;
  fleet?: string;
  listen?: string;
  apiPort?: number;
  brokerPort?: number;
  /** `--store URL`: overrides `hub.store`. */
  store?: string;
  /** `--bus URL`: overrides `bus.url` (and picks `bus.type` from its scheme). */
  bus?: string;
}

/**
 * Everything startHub needs from a loaded rampart.yaml plus the command-line flags (flags win):
 * validates `hub:` and `bus:`, naming file and key on error. Add `log` and call startHub.
 */
export function hubStartOptions(
  cfg: RampartConfig & { file?: string },
  flags: HubFlagOverrides,
): Omit<HubOptions, 'log'> {
  const section = resolveHubSection(cfg.hub, cfg.file);
  const bus = busConfigSchema.safeParse(flags.bus ? busFromFlag(cfg.bus, flags.bus) : (cfg.bus ?? {}));
  if (!bus.success) {
    const issue = bus.error.issues[0]!;
    throw new ConfigError(issue.message, {
      file: cfg.file,
      key: ['bus', ...issue.path.map(String)].join('.'),
    });
  }
  return {
    dataDir: flags.dataDir,
    fleet: flags.fleet ?? cfg.fleet,
    listen: flags.listen ?? section.listen,
    apiPort: flags.apiPort ?? section.port,
    brokerPort: flags.brokerPort,
    publicUrl: section.publicUrl,
    bus: bus.data,
    retentionMs: section.retentionMs,
    joinTtlMs: section.joinTtlMs,
    tls: section.tls,
    storeUrl: flags.store ?? section.store,
    policy: section.policy,
    blocklistPublic: section.blocklistPublic,
    allowlist: cfg.allowlist,
    configFile: cfg.file,
  };
}

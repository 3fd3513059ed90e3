import { z } from 'zod';
import { parseTarget } from '../core/address.js';
import { parseDuration } from '../core/duration.js';
import { parseHostPort } from '../core/host-port.js';
import { hubUrls } from '../hub/http-json.js';

/** A finite duration (`10s`, `1m`, or seconds) as a number of seconds. */
export const intervalSeconds = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    const s = parseDuration(v);
    if (s !== null) return s;
    ctx.addIssue({ code: 'custom', message: 'must be a finite duration, not permanent' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
  return z.NEVER;
});

/** An address or CIDR, kept as written after checking it parses. */
export const cidrText = z.string().superRefine((v, ctx) => {
  try {
    parseTarget(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** The `agent:` section: what `rampart join` writes and the agent reads. */
export const agentSectionSchema = z
  .object({
    /** Node name enrolled at the hub (the envelope sender). */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, . _ - (max 64)')
      .optional(),
    /** The hub's API URL; several hubs on one store as a comma-separated list (tried in turn). */
    hub: z
      .string()
      .refine((v) => hubUrls(v).length > 0 && hubUrls(v).every((u) => URL.canParse(u)), {
        message: 'expected a URL, or several separated by commas',
      })
      .optional(),
    fleet: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .optional(),
    /** Hub public key (base64 raw Ed25519) pinned at join. */
    hubPublicKey: z.string().optional(),
    /** Log files followed with the built-in rules, on top of `sources:`. */
    watch: z.array(z.string().min(1)).default([]),
    /** fail2ban.log files whose Ban/Unban lines are reported to the fleet (compat/fail2ban/log-events.ts). */
    fail2banLog: z.array(z.string().min(1)).default([]),
    /** Ban length reported for a fail2ban ban (its log does not say); fail2ban's default. */
    fail2banBantime: intervalSeconds.default(600),
    /** Never banned on this server, whoever signed the ban. */
    allowlist: z.array(cidrText).default([]),
    /**
     * Send failures below each rule's maxretry to the hub for fleet-wide counting (rules with a
     * `fleet:` threshold only, such as the built-in sshd). Off: the detection hot path skips it.
     */
    fleetCounting: z.boolean().default(true),
    /** How often those counts are sent (batched, coalesced per address and rule). */
    fleetInterval: intervalSeconds.refine((s) => s > 0, { message: 'must be more than 0' }).default(2),
    reconcileInterval: intervalSeconds.default(60),
    heartbeatInterval: intervalSeconds.default(10),
    /** Prometheus `/metrics` of this agent: off unless `listen` is set. */
    metrics: z
      .object({
        /** `HOST:PORT` (e.g. 127.0.0.1:9780), `[V6]:PORT`, or `PORT` on 127.0.0.1. */
        listen: z.string().superRefine((v, ctx) => {
          try {
            parseHostPort(v, 'listen');
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
          }
        }),
        /** A bearer token scrapes must send; or `tokenFile` (mode 0600) holding it. */
        token: z.string().min(16, 'at least 16 characters').optional(),
        tokenFile: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type AgentSection = z.output<typeof agentSectionSchema>;

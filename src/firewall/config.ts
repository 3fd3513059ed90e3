import { z } from 'zod';
import { isSetName, SET_NAME_RULE } from '../core/set-name.js';
import { DRIVER_CHOICES } from './driver.js';
import { FIREWALL_BACKENDS, unknownBackend } from './from-config.js';

/*
 * The `firewall:` section's schemas, apart from the backends: a config validated elsewhere (the
 * agent's, in a worker thread: ADR 0039) builds its firewall without loading the schema library.
 */

/** The `firewall.ipset` section of rampart.yaml. */
export const ipsetConfigSchema = z.strictObject({
  program: z.string().optional(),
  defaultSet: z.string().optional(),
  sets: z
    .record(
      z.string(),
      z.strictObject({
        v4: z.string().optional(),
        v6: z.string().optional(),
        v4net: z.string().optional(),
        v6net: z.string().optional(),
      }),
    )
    .optional(),
  create: z.boolean().optional(),
  maxelem: z.number().int().positive().optional(),
  hashsize: z.number().int().positive().optional(),
});

/** The `firewall.xt_recent` section of rampart.yaml. */
export const xtRecentConfigSchema = z.strictObject({
  defaultSet: z.string().optional(),
  targets: z.record(z.string(), z.string()).optional(),
  procDir: z.string().optional(),
});

/** The `firewall.command` section of rampart.yaml. */
export const commandConfigSchema = z.strictObject({
  file: z.string(),
  init: z.record(z.string(), z.string()).optional(),
  name: z.string().optional(),
  stopOnShutdown: z.boolean().optional(),
  chunk: z.number().int().positive().optional(),
});

/** The `firewall.fail2ban` section of rampart.yaml. */
export const fail2banClientConfigSchema = z.strictObject({
  program: z.string().optional(),
  socket: z.string().optional(),
  jail: z.string().optional(),
  jails: z.record(z.string(), z.string()).optional(),
  chunk: z.number().int().positive().optional(),
});

/** The `firewall.conntrack` section of rampart.yaml: `true` or options; flushes after every ban. */
export const conntrackConfigSchema = z.union([
  z.boolean(),
  z.strictObject({
    program: z.string().optional(),
    directions: z
      .array(z.enum(['src', 'dst']))
      .min(1)
      .optional(),
  }),
]);

const kernelSetNames = z.strictObject({
  v4: z.string().optional(),
  v6: z.string().optional(),
  v4net: z.string().optional(),
  v6net: z.string().optional(),
});

export const nftablesConfigSchema = z.strictObject({
  nft: z.string().optional(),
  family: z.string().optional(),
  table: z.string().optional(),
  hooks: z
    .array(z.enum(['input', 'forward']))
    .min(1)
    .optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  verdict: z.enum(['drop', 'reject']).optional(),
  setOnly: z.boolean().optional(),
  sets: z
    .record(z.string().refine(isSetName, { message: `set names must be: ${SET_NAME_RULE}` }), kernelSetNames)
    .optional(),
});

/**
 * The `firewall:` section of rampart.yaml. Each backend has its own sub-section named after it;
 * unknown keys are kept so backends can be added without touching this schema's callers.
 */
export const firewallConfigSchema = z.looseObject({
  // Checked here, not only in createFirewall, so a typo is reported with file:line when the config
  // loads, before a hub or a broker has started.
  backend: z
    .string()
    .superRefine((v, ctx) => {
      if (!(FIREWALL_BACKENDS as readonly string[]).includes(v))
        ctx.addIssue({ code: 'custom', message: unknownBackend(v) });
    })
    .default('auto'),
  /** Prefix for every command a backend spawns, e.g. [ip, netns, exec, NS]. */
  exec: z.array(z.string()).optional(),
  /**
   * How nftables and ipset reach the kernel: `library` (libnftables / libipset in-process),
   * `spawn` (run nft / ipset per commit), `auto` (default: the library, else spawn, said once).
   */
  driver: z.enum(DRIVER_CHOICES).optional(),
  nftables: nftablesConfigSchema.optional(),
  ipset: ipsetConfigSchema.optional(),
  xt_recent: xtRecentConfigSchema.optional(),
  command: commandConfigSchema.optional(),
  fail2ban: fail2banClientConfigSchema.optional(),
  /** Drop a banned address's open connections after each ban, with any backend. */
  conntrack: conntrackConfigSchema.optional(),
});

export type FirewallConfig = z.input<typeof firewallConfigSchema>;
/** A `firewall:` section as the schema gives it back (defaults filled in). */
export type ValidFirewallConfig = z.output<typeof firewallConfigSchema>;

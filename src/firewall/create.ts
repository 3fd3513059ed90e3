import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { isSetName, SET_NAME_RULE } from '../core/set-name.js';
import { CommandFirewall, commandConfigSchema } from './command.js';
import { ConntrackFlusher, conntrackConfigSchema, withConntrack } from './conntrack.js';
import { DRIVER_CHOICES } from './driver.js';
import { DryRunFirewall } from './dry-run.js';
import { Fail2banClientFirewall, fail2banClientConfigSchema } from './fail2ban-client.js';
import { IpsetFirewall, ipsetConfigSchema } from './ipset.js';
import { NftablesFirewall } from './nftables.js';
import type { Firewall } from './types.js';
import { XtRecentFirewall, xtRecentConfigSchema } from './xt-recent.js';

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

/** Backend names `createFirewall` knows; `auto` = nftables when possible, else dry-run. */
export const FIREWALL_BACKENDS = [
  'auto',
  'nftables',
  'dry-run',
  'ipset',
  'xt_recent',
  'command',
  'fail2ban',
] as const;

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

export interface CreateFirewallDeps {
  logger?: Logger;
  /** Whether this process may change the firewall; default: running as root. */
  privileged?: boolean;
  /** Finds a program on PATH (tests override it). */
  which?: (cmd: string) => string | undefined;
}

/**
 * Builds the configured backend. `auto` (the default) picks nftables when running as root with
 * `nft` installed, and otherwise the dry-run backend with one warning line saying why.
 */
export function createFirewall(config: FirewallConfig = {}, deps: CreateFirewallDeps = {}): Firewall {
  const parsed = firewallConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RampartError('E_CONFIG', `firewall.${issue.path.join('.')}: ${issue.message}`);
  }
  const cfg = parsed.data;
  const log = deps.logger ?? silentLogger();
  const prefix = cfg.exec;
  if (cfg.conntrack) {
    const inner = createFirewall({ ...config, conntrack: false }, deps);
    // Cutting connections while bans are only logged would punish without protecting.
    if (inner.name === 'dry-run') return inner;
    const ct = typeof cfg.conntrack === 'object' ? cfg.conntrack : {};
    return withConntrack(inner, new ConntrackFlusher({ ...ct, prefix }), log);
  }
  switch (cfg.backend) {
    case 'auto': {
      const privileged = deps.privileged ?? process.getuid?.() === 0;
      const nft = cfg.nftables?.nft ?? 'nft';
      const found = (deps.which ?? which)(nft);
      if (privileged && found)
        return new NftablesFirewall({ ...cfg.nftables, prefix, driver: cfg.driver, logger: log });
      log.warn(
        { backend: 'dry-run' },
        `firewall: using the dry-run backend (${!privileged ? 'not running as root' : `"${nft}" not found`}): bans are logged, NOT enforced`,
      );
      return new DryRunFirewall({ logger: log });
    }
    case 'nftables':
      return new NftablesFirewall({ ...cfg.nftables, prefix, driver: cfg.driver, logger: log });
    case 'dry-run':
      return new DryRunFirewall({ logger: log });
    case 'ipset':
      return new IpsetFirewall({ ...cfg.ipset, prefix, driver: cfg.driver, logger: log });
    case 'xt_recent':
      return new XtRecentFirewall({ ...cfg.xt_recent, prefix, logger: log });
    case 'fail2ban':
      return new Fail2banClientFirewall({ ...cfg.fail2ban, prefix, logger: log });
    case 'command':
      if (!cfg.command)
        throw new RampartError('E_CONFIG', 'firewall.command.file: the command backend needs an action file');
      return new CommandFirewall({ ...cfg.command, prefix, logger: log });
    default:
      throw new RampartError('E_CONFIG', `firewall.backend: ${unknownBackend(cfg.backend)}`);
  }
}

function unknownBackend(name: string): string {
  return `unknown backend "${name.slice(0, 40)}"; valid: ${FIREWALL_BACKENDS.join(', ')}`;
}

/** The path of a program as PATH (plus the sbin folders root uses) resolves it. */
export function which(cmd: string): string | undefined {
  const dirs = cmd.includes('/') ? [''] : [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const full = dir ? path.join(dir, cmd) : cmd;
    try {
      accessSync(full, constants.X_OK);
      return full;
    } catch {}
  }
  return undefined;
}

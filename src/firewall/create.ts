import { RampartError } from '../core/errors.js';
import { CommandFirewall } from './command.js';
import { type FirewallConfig, firewallConfigSchema, type ValidFirewallConfig } from './config.js';
import { ConntrackFlusher, withConntrack } from './conntrack.js';
import { DryRunFirewall } from './dry-run.js';
import { Fail2banClientFirewall } from './fail2ban-client.js';
import { type CreateFirewallDeps, firewallWith } from './from-config.js';
import { IpsetFirewall } from './ipset.js';
import { NftablesFirewall } from './nftables.js';
import type { Firewall } from './types.js';
import { XtRecentFirewall } from './xt-recent.js';

export {
  type FirewallConfig,
  firewallConfigSchema,
  nftablesConfigSchema,
} from './config.js';
export { type CreateFirewallDeps, FIREWALL_BACKENDS, which } from './from-config.js';

/** Every backend, for commands that take any of them (an agent loads only its own: `loadFirewall`). */
const ALL_BACKENDS = {
  NftablesFirewall,
  DryRunFirewall,
  IpsetFirewall,
  XtRecentFirewall,
  Fail2banClientFirewall,
  CommandFirewall,
  ConntrackFlusher,
  withConntrack,
};

/**
 * Builds the configured backend. `auto` (the default) picks nftables when running as root with
 * `nft` installed, and otherwise the dry-run backend with one warning line saying why. The
 * section is validated here; one already validated goes to {@link firewallFromConfig}.
 */
export function createFirewall(config: FirewallConfig = {}, deps: CreateFirewallDeps = {}): Firewall {
  const parsed = firewallConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RampartError('E_CONFIG', `firewall.${issue.path.join('.')}: ${issue.message}`);
  }
  return firewallFromConfig(parsed.data, deps);
}

/** {@link createFirewall} for a section already validated. */
export function firewallFromConfig(cfg: ValidFirewallConfig, deps: CreateFirewallDeps = {}): Firewall {
  return firewallWith(ALL_BACKENDS, cfg, deps);
}

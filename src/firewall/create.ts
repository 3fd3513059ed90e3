import { RampartError } from '../core/errors.js';
import { type FirewallConfig, firewallConfigSchema } from './config.js';
import { type CreateFirewallDeps, firewallFromConfig } from './from-config.js';
import type { Firewall } from './types.js';

export {
  type FirewallConfig,
  firewallConfigSchema,
  nftablesConfigSchema,
} from './config.js';
export { type CreateFirewallDeps, FIREWALL_BACKENDS, which } from './from-config.js';

/**
 * Builds the configured backend. `auto` (the default) picks nftables when running as root with
 * `nft` installed, and otherwise the dry-run backend with one warning line saying why. The
 * section is validated here; one already validated goes to `firewallFromConfig` directly.
 */
export function createFirewall(config: FirewallConfig = {}, deps: CreateFirewallDeps = {}): Firewall {
  const parsed = firewallConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RampartError('E_CONFIG', `firewall.${issue.path.join('.')}: ${issue.message}`);
  }
  return firewallFromConfig(parsed.data, deps);
}

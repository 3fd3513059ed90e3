import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { RampartError } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import { CommandFirewall } from './command.js';
import type { ValidFirewallConfig } from './config.js';
import { ConntrackFlusher, withConntrack } from './conntrack.js';
import { DryRunFirewall } from './dry-run.js';
import { Fail2banClientFirewall } from './fail2ban-client.js';
import { IpsetFirewall } from './ipset.js';
import { NftablesFirewall } from './nftables.js';
import type { Firewall } from './types.js';
import { XtRecentFirewall } from './xt-recent.js';

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

export interface CreateFirewallDeps {
  logger?: Logger;
  /** Whether this process may change the firewall; default: running as root. */
  privileged?: boolean;
  /** Finds a program on PATH (tests override it). */
  which?: (cmd: string) => string | undefined;
}

/**
 * Builds the configured backend from a validated section (see `createFirewall` for one that is
 * not). `auto` (the default) picks nftables when running as root with
 * `nft` installed, and otherwise the dry-run backend with one warning line saying why.
 */
export function firewallFromConfig(cfg: ValidFirewallConfig, deps: CreateFirewallDeps = {}): Firewall {
  const log = deps.logger ?? silentLogger();
  const prefix = cfg.exec;
  if (cfg.conntrack) {
    const inner = firewallFromConfig({ ...cfg, conntrack: false }, deps);
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

export function unknownBackend(name: string): string {
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

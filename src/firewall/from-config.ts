import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { RampartError } from '../core/errors.js';
import { loaded } from '../core/loaded.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { CommandFirewall } from './command.js';
import type { ValidFirewallConfig } from './config.js';
import type { ConntrackFlusher, withConntrack } from './conntrack.js';
import type { DryRunFirewall } from './dry-run.js';
import type { Fail2banClientFirewall } from './fail2ban-client.js';
import type { IpsetFirewall } from './ipset.js';
import type { NftablesFirewall } from './nftables.js';
import type { Firewall } from './types.js';
import type { XtRecentFirewall } from './xt-recent.js';

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
 * The backends' classes, passed in by the caller rather than imported here: `createFirewall` gives
 * them all, {@link loadFirewall} only those the section names (each is a module graph of its own,
 * which an agent would otherwise hold for good; ADR 0060). A class missing is a caller's bug.
 */
export interface FirewallBackends {
  NftablesFirewall?: typeof NftablesFirewall;
  DryRunFirewall?: typeof DryRunFirewall;
  IpsetFirewall?: typeof IpsetFirewall;
  XtRecentFirewall?: typeof XtRecentFirewall;
  Fail2banClientFirewall?: typeof Fail2banClientFirewall;
  CommandFirewall?: typeof CommandFirewall;
  ConntrackFlusher?: typeof ConntrackFlusher;
  withConntrack?: typeof withConntrack;
}

/**
 * Builds the configured backend from a validated section (see `createFirewall` for one that is
 * not) with the classes in `impl`. `auto` (the default) picks nftables when running as root with
 * `nft` installed, and otherwise the dry-run backend with one warning line saying why.
 */
export function firewallWith(
  impl: FirewallBackends,
  cfg: ValidFirewallConfig,
  deps: CreateFirewallDeps = {},
): Firewall {
  const log = deps.logger ?? silentLogger();
  const prefix = cfg.exec;
  const need = <K extends keyof FirewallBackends>(k: K) => loaded(impl, k, 'firewall');
  if (cfg.conntrack) {
    const inner = firewallWith(impl, { ...cfg, conntrack: false }, deps);
    // Cutting connections while bans are only logged would punish without protecting.
    if (inner.name === 'dry-run') return inner;
    const ct = typeof cfg.conntrack === 'object' ? cfg.conntrack : {};
    const Flusher = need('ConntrackFlusher');
    return need('withConntrack')(inner, new Flusher({ ...ct, prefix }), log);
  }
  const nftables = () => {
    const Nft = need('NftablesFirewall');
    return new Nft({ ...cfg.nftables, prefix, driver: cfg.driver, logger: log });
  };
  const dryRun = () => new (need('DryRunFirewall'))({ logger: log });
  switch (cfg.backend) {
    case 'auto': {
      const choice = autoBackend(cfg, deps);
      if (choice.backend === 'nftables') return nftables();
      log.warn(
        { backend: 'dry-run' },
        `firewall: using the dry-run backend (${choice.why}): bans are logged, NOT enforced`,
      );
      return dryRun();
    }
    case 'nftables':
      return nftables();
    case 'dry-run':
      return dryRun();
    case 'ipset':
      return new (need('IpsetFirewall'))({ ...cfg.ipset, prefix, driver: cfg.driver, logger: log });
    case 'xt_recent':
      return new (need('XtRecentFirewall'))({ ...cfg.xt_recent, prefix, logger: log });
    case 'fail2ban':
      return new (need('Fail2banClientFirewall'))({ ...cfg.fail2ban, prefix, logger: log });
    case 'command':
      if (!cfg.command)
        throw new RampartError('E_CONFIG', 'firewall.command.file: the command backend needs an action file');
      return new (need('CommandFirewall'))({ ...cfg.command, prefix, logger: log });
    default:
      throw new RampartError('E_CONFIG', `firewall.backend: ${unknownBackend(cfg.backend)}`);
  }
}

/** What `auto` resolves to here: nftables when root with `nft` found, else dry-run and why. */
function autoBackend(
  cfg: ValidFirewallConfig,
  deps: CreateFirewallDeps,
): { backend: 'nftables' } | { backend: 'dry-run'; why: string } {
  const privileged = deps.privileged ?? process.getuid?.() === 0;
  const nft = cfg.nftables?.nft ?? 'nft';
  if (!privileged) return { backend: 'dry-run', why: 'not running as root' };
  if (!(deps.which ?? which)(nft)) return { backend: 'dry-run', why: `"${nft}" not found` };
  return { backend: 'nftables' };
}

/**
 * {@link firewallWith} after importing only the backend the section names (and conntrack when it
 * is on): what a long-running agent uses, so it does not keep the modules of five backends it
 * never runs. Errors are those of {@link firewallWith}.
 */
export async function loadFirewall(
  cfg: ValidFirewallConfig,
  deps: CreateFirewallDeps = {},
): Promise<Firewall> {
  const backend = cfg.backend === 'auto' ? autoBackend(cfg, deps).backend : cfg.backend;
  const impl: FirewallBackends = {};
  // Conntrack's flusher is loaded even over dry-run, which `firewallWith` then leaves out.
  if (cfg.conntrack) {
    const ct = await import('./conntrack.js');
    impl.ConntrackFlusher = ct.ConntrackFlusher;
    impl.withConntrack = ct.withConntrack;
  }
  const load = Object.hasOwn(BACKEND_LOADERS, backend) ? BACKEND_LOADERS[backend] : undefined;
  // An unknown name loads nothing: `firewallWith` reports it.
  if (load) Object.assign(impl, await load());
  return firewallWith(impl, cfg, deps);
}

/** Each backend's module, imported on demand, by `firewall.backend` name. */
const BACKEND_LOADERS: Record<string, () => Promise<FirewallBackends>> = {
  nftables: async () => ({ NftablesFirewall: (await import('./nftables.js')).NftablesFirewall }),
  'dry-run': async () => ({ DryRunFirewall: (await import('./dry-run.js')).DryRunFirewall }),
  ipset: async () => ({ IpsetFirewall: (await import('./ipset.js')).IpsetFirewall }),
  xt_recent: async () => ({ XtRecentFirewall: (await import('./xt-recent.js')).XtRecentFirewall }),
  fail2ban: async () => ({
    Fail2banClientFirewall: (await import('./fail2ban-client.js')).Fail2banClientFirewall,
  }),
  command: async () => ({ CommandFirewall: (await import('./command.js')).CommandFirewall }),
};

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

import { describe, expect, it } from 'vitest';
import { lineLogger } from '../../src/core/logger.js';
import { firewallConfigSchema } from '../../src/firewall/config.js';
import { DryRunFirewall } from '../../src/firewall/dry-run.js';
import { type CreateFirewallDeps, firewallWith, loadFirewall } from '../../src/firewall/from-config.js';
import { IpsetFirewall } from '../../src/firewall/ipset.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { XtRecentFirewall } from '../../src/firewall/xt-recent.js';

const section = (c: object) => firewallConfigSchema.parse(c);

describe('loadFirewall', () => {
  it('loadFirewall - builds the configured backend; auto decides before anything is loaded, with its one warning', async () => {
    const lines: string[] = [];
    const logger = lineLogger((s: string) => lines.push(s));
    const deps = (privileged: boolean, nft?: string): CreateFirewallDeps => ({
      logger,
      privileged,
      which: () => nft,
    });
    expect(await loadFirewall(section({}), deps(false, '/usr/sbin/nft'))).toBeInstanceOf(DryRunFirewall);
    expect(JSON.parse(lines[0]!).msg).toMatch(/dry-run backend \(not running as root\).*NOT enforced/);
    expect(await loadFirewall(section({}), deps(true))).toBeInstanceOf(DryRunFirewall);
    expect(JSON.parse(lines[1]!).msg).toMatch(/"nft" not found/);
    expect(await loadFirewall(section({}), deps(true, '/usr/sbin/nft'))).toBeInstanceOf(NftablesFirewall);
    expect(await loadFirewall(section({ backend: 'ipset' }))).toBeInstanceOf(IpsetFirewall);
    expect(await loadFirewall(section({ backend: 'xt_recent' }))).toBeInstanceOf(XtRecentFirewall);
    expect((await loadFirewall(section({ backend: 'ipset', conntrack: true }))).name).toBe('ipset+conntrack');
    // Conntrack over dry-run would cut connections without protecting: the dry-run alone.
    expect((await loadFirewall(section({ backend: 'dry-run', conntrack: true }))).name).toBe('dry-run');
    expect(lines).toHaveLength(2);
  });

  it('loadFirewall - the factory uses only the classes it is given; errors are those of createFirewall', async () => {
    expect(firewallWith({ DryRunFirewall }, section({ backend: 'dry-run' }))).toBeInstanceOf(DryRunFirewall);
    expect(() => firewallWith({ DryRunFirewall }, section({ backend: 'ipset' }))).toThrow(
      /IpsetFirewall was not loaded/,
    );
    await expect(loadFirewall({ ...section({}), backend: 'pf' as 'auto' })).rejects.toThrow(
      /firewall\.backend: unknown backend "pf"/,
    );
    await expect(loadFirewall(section({ backend: 'command' }))).rejects.toThrow(/needs an action file/);
  });
});

import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { firewallContract } from './contract.js';

// The same contract through libnftables in-process and through the spawned nft program.
for (const driver of ['library', 'spawn'] as const) {
  firewallContract(
    `nftables (${driver})`,
    async (host) => new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', host.ns], driver }),
    { needs: ['cmd:nft', 'file:/usr/lib/x86_64-linux-gnu/libnftables.so.1'], driver },
  );
}

firewallContract(
  'nftables (reject, input and forward hooks)',
  async (host) =>
    new NftablesFirewall({
      prefix: ['ip', 'netns', 'exec', host.ns],
      verdict: 'reject',
      hooks: ['input', 'forward'],
      table: 'rp_alt',
    }),
  { needs: ['cmd:nft'] },
);

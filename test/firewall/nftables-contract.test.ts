import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { firewallContract } from './contract.js';

firewallContract(
  'nftables',
  async (host) => new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', host.ns] }),
  {
    needs: ['cmd:nft'],
  },
);

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

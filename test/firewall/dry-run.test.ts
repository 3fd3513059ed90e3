import { describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { DryRunFirewall } from '../../src/firewall/dry-run.js';
import { firewallContract } from './contract.js';

firewallContract('dry-run', async () => new DryRunFirewall(), { packets: false });

describe('dry-run', () => {
  it('dry-run - records every batch it would apply, with remaining times', async () => {
    const fw = new DryRunFirewall();
    fw.add(parseTarget('192.0.2.1'), 60);
    fw.add(parseTarget('2001:db8::/64'), null, 'ssh');
    fw.delete(parseTarget('192.0.2.9'));
    expect(await fw.commit()).toEqual({ added: 2, deleted: 1 });
    expect(fw.history).toHaveLength(1);
    expect(fw.history[0]!.added).toEqual([
      { set: 'blocklist', target: '192.0.2.1', timeout: 60 },
      { set: 'ssh', target: '2001:db8::/64', timeout: null },
    ]);
    expect(fw.history[0]!.deleted).toEqual([{ set: 'blocklist', target: '192.0.2.9' }]);
    expect((await fw.list('ssh')).map((e) => e.target.text)).toEqual(['2001:db8::/64']);
  });
});

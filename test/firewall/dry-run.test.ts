import { describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { RampartError } from '../../src/core/errors.js';
import { lineLogger } from '../../src/core/logger.js';
import { Batcher } from '../../src/firewall/batcher.js';
import { createFirewall } from '../../src/firewall/create.js';
import { DryRunFirewall } from '../../src/firewall/dry-run.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
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

describe('createFirewall', () => {
  const capture = () => {
    const lines: string[] = [];
    const logger = lineLogger((s: string) => lines.push(s));
    return { lines, logger };
  };

  it('createFirewall - auto falls back to dry-run when not root, with one warning line saying so', () => {
    const { lines, logger } = capture();
    const fw = createFirewall({}, { logger, privileged: false, which: () => '/usr/sbin/nft' });
    expect(fw).toBeInstanceOf(DryRunFirewall);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!).msg).toMatch(/dry-run backend \(not running as root\).*NOT enforced/);
  });

  it('createFirewall - auto falls back to dry-run when nft is missing, and picks nftables when it can', () => {
    const { lines, logger } = capture();
    expect(createFirewall({}, { logger, privileged: true, which: () => undefined })).toBeInstanceOf(
      DryRunFirewall,
    );
    expect(JSON.parse(lines[0]!).msg).toMatch(/"nft" not found/);
    expect(createFirewall({}, { logger, privileged: true, which: () => '/usr/sbin/nft' })).toBeInstanceOf(
      NftablesFirewall,
    );
    expect(lines).toHaveLength(1);
  });

  it('createFirewall - an unknown backend or a bad option is E_CONFIG naming the key and the valid values', () => {
    expect(() => createFirewall({ backend: 'pf' })).toThrow(
      /firewall\.backend: unknown backend "pf"; valid: .*nftables.*dry-run/,
    );
    expect(() => createFirewall({ backend: 'nftables', nftables: { verdict: 'accept' as 'drop' } })).toThrow(
      /firewall\.nftables\.verdict/,
    );
    expect(() => createFirewall({ backend: 'nftables', nftables: { table: 'bad name;' } })).toThrow(
      RampartError,
    );
  });
});

describe('Batcher over dry-run', () => {
  /** A dry-run whose commits wait for the test to open a gate, like a slow nft process. */
  class GatedDryRun extends DryRunFirewall {
    running = 0;
    maxRunning = 0;
    sizes: number[] = [];
    private open!: () => void;
    private gate = new Promise<void>((r) => {
      this.open = r;
    });
    release() {
      this.open();
    }
    override async commit() {
      this.running++;
      this.maxRunning = Math.max(this.maxRunning, this.running);
      try {
        // Like nft: the batch is taken at once, and the commit resolves when the gate opens.
        const r = await super.commit();
        this.sizes.push(r.added);
        await this.gate;
        return r;
      } finally {
        this.running--;
      }
    }
  }
  const turn = () => new Promise((r) => setImmediate(r));

  it('batcher - a lone ban commits at once; 9,999 more arriving one by one during that commit make one more', async () => {
    const fw = new GatedDryRun();
    const batcher = new Batcher(fw);
    const done: Promise<void>[] = [batcher.add(parseTarget('10.1.0.0'), 600)];
    await turn();
    await turn();
    expect(fw.running).toBe(1);
    for (let i = 1; i < 10_000; i++) {
      done.push(batcher.add(parseTarget(`10.0.${i >> 8}.${i & 255}`), 600));
      if (i % 100 === 0) await turn();
    }
    fw.release();
    await Promise.all(done);
    expect(fw.sizes).toEqual([1, 9_999]);
    expect(fw.maxRunning).toBe(1);
    expect(await fw.list()).toHaveLength(10_000);
    await batcher.close();
    await expect(batcher.add(parseTarget('192.0.2.1'), 60)).rejects.toThrow(/closed/);
  });
});

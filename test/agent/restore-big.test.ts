import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecisionApplier } from '../../src/agent/applier.js';
import { Committer } from '../../src/agent/committer.js';
import { AgentState } from '../../src/agent/state.js';
import { formatIPv4 } from '../../src/core/address.js';
import { Allowlist } from '../../src/core/allowlist.js';
import { silentLogger } from '../../src/core/logger.js';
import { LibraryDriver } from '../../src/firewall/driver.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { sync } from '../../src/firewall/reconcile.js';
import { createLan, type Host, type Lan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('agent: a start with many bans', ['root', 'netns', 'cmd:nft']);
const N = 15_000;

describe.skipIf(req.skip)('agent - a start and a reconcile above 10,000 bans (ADR 0043)', () => {
  let lan: Lan;
  let host: Host;
  let kernel: LibraryDriver;
  let dir: string;
  beforeAll(async () => {
    lan = await createLan(1, 'rbig');
    host = lan.hosts[0]!;
    kernel = await LibraryDriver.open('nft', `/run/netns/${host.ns}`);
    dir = mkdtempSync(join(tmpdir(), 'rampart-restore-'));
  }, 60_000);
  afterAll(async () => {
    await kernel?.close();
    await lan?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const size = async () => {
    const out = await host.exec('nft', ['-j', 'list', 'set', 'inet', 'rbig', 'blocklist_v4']);
    const doc = JSON.parse(out) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
    return doc.nftables.find((x) => x.set)!.set!.elem?.length ?? 0;
  };

  it(`restores ${N} bans in slices from the state, and a reconcile after a flush refills only what is missing`, async () => {
    const state = AgentState.open(join(dir, 'agent'));
    const fw = new NftablesFirewall({
      prefix: ['ip', 'netns', 'exec', host.ns],
      table: 'rbig',
      driver: 'library',
    });
    const log = silentLogger();
    const committer = new Committer(fw, log);
    const applier = new DecisionApplier({
      state,
      firewall: fw,
      committer,
      allowlist: new Allowlist([]),
      log,
      fetchSince: async () => ({ head: N, decisions: [] }),
    });
    try {
      const until = Date.now() + 3_600_000;
      state.batch(() => {
        for (let i = 0; i < N; i++) {
          const target = formatIPv4((10 << 24) + i + 1);
          state.applyHub(i + 1, {
            ban: { target, set: 'blocklist', expiresAt: until, seq: i + 1, origin: 'hub' },
          });
        }
      });
      await fw.init();
      const g = (await kernel.run(['--generation'])).generation!;
      expect(await applier.restore()).toBe(N);
      expect(await size()).toBe(N);
      // The declaration, then one transaction per 20,000 elements: never one holding them all.
      expect((await kernel.run(['--generation'])).generation! - g).toBe(2);

      // Half of them deleted behind the agent's back: put back from the state's pages.
      const script: string[] = [];
      for (let i = 0; i < N; i += 2)
        script.push(`delete element inet rbig blocklist_v4 { ${formatIPv4((10 << 24) + i + 1)} }`);
      await host.exec('nft', ['-f', '-'], { input: `${script.join('\n')}\n` });
      const r = await sync(fw, applier.desiredStream());
      expect(r.strategy).toBe('repair');
      expect(r.counts).toEqual({ added: N / 2, deleted: 0, renewed: 0, refilled: 0 });
      expect(await size()).toBe(N);
    } finally {
      committer.stop();
      await fw.shutdown();
      state.close();
    }
  }, 120_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { sync } from '../../src/firewall/reconcile.js';
import type { FirewallEntry } from '../../src/firewall/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('nftables: range bans are repaired after drift', ['root', 'netns', 'cmd:nft']);
const PORT = 8080;

describe.skipIf(req.skip)('nftables - reconcile repairs range bans after drift', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  beforeAll(async () => {
    lan = await createLan(2, 'drft');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
  });

  const blocked = async () => !(await canConnect(client, server.v4, PORT, 800));
  const texts = (es: FirewallEntry[]) => es.map((e) => e.target.text).sort();

  for (const driver of ['library', 'spawn'] as const) {
    it(`nftables (${driver}) - after a flushed range set and a deleted table the range drops the client again, and the counts are honest`, async () => {
      const table = `drift_${driver}`;
      const fw = new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table, driver });
      await fw.init();
      // The client (198.51.100.2) is inside the /28; a nested /30 and a single address ride along.
      const desired: FirewallEntry[] = [
        { target: parseTarget('198.51.100.0/28'), set: 'blocklist', timeout: 600 },
        { target: parseTarget('198.51.100.0/30'), set: 'blocklist', timeout: 600 },
        { target: parseTarget('203.0.113.9'), set: 'blocklist', timeout: 600 },
      ];
      try {
        for (const e of desired) fw.add(e.target, e.timeout, e.set);
        await fw.commit();
        expect(await blocked()).toBe(true);
        // No drift: nothing to repair, every minute (the nested range is enforced by the outer one).
        expect((await sync(fw, desired, { strategy: 'diff' })).added).toEqual([]);

        await server.exec('nft', ['flush', 'set', 'inet', table, 'blocklist_v4_net']);
        expect(await blocked()).toBe(false);
        const repaired = await sync(fw, desired, { strategy: 'diff' });
        // What was lost is what is reported: both ranges, not the address that stayed.
        expect(texts(repaired.added)).toEqual(['198.51.100.0/28', '198.51.100.0/30']);
        expect(await blocked()).toBe(true);
        expect((await sync(fw, desired, { strategy: 'diff' })).added).toEqual([]);

        await server.exec('nft', ['delete', 'table', 'inet', table]);
        expect(await blocked()).toBe(false);
        const rebuilt = await sync(fw, desired, { strategy: 'diff' });
        expect(texts(rebuilt.added)).toEqual(texts(desired));
        expect(await blocked()).toBe(true);
        expect((await sync(fw, desired, { strategy: 'diff' })).added).toEqual([]);
      } finally {
        await fw.destroy();
        await fw.shutdown();
      }
    }, 60_000);
  }
});

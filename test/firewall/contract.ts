import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import type { Firewall, FirewallEntry } from '../../src/firewall/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { type Need, requirements } from '../helpers/requirements.js';

/** What a backend can do; the contract runs only the parts that apply. Everything defaults to true. */
export interface ContractOptions {
  /** The backend really drops packets (false for dry-run: only the bookkeeping is checked). */
  packets?: boolean;
  /** CIDR ranges, not only single addresses. */
  ranges?: boolean;
  ipv6?: boolean;
  /** Per-element timeouts that expire by themselves. */
  timeouts?: boolean;
  /** `list()` reads back elements with their remaining time. */
  list?: boolean;
  /** Extra machine requirements (e.g. `cmd:ipset`); root and netns are added when packets is on. */
  needs?: Need[];
  /** The driver the backend must end up using (no silent fallback from the library to spawning). */
  driver?: 'library' | 'spawn';
}

const PORT = 8080;
const BLOCKED_PROBE_MS = 800;

/** A host that runs commands here, for backends that never touch the kernel. */
function localHost(): Host {
  return {
    ns: '',
    v4: '198.51.100.1',
    v6: '2001:db8::1',
    exec: () => Promise.reject(new Error('no namespace: this contract run has packets: false')),
    spawn: () => {
      throw new Error('no namespace: this contract run has packets: false');
    },
  };
}

/**
 * The behaviour every firewall backend promises, proved with real TCP connections between two
 * namespaces. `make(host)` must return an un-initialised backend that runs its tools inside
 * `host.ns` (e.g. a command prefix `['ip', 'netns', 'exec', host.ns]`); the suite calls `init()`
 * and `shutdown()` itself.
 */
export function firewallContract(
  name: string,
  make: (host: Host) => Promise<Firewall>,
  opts: ContractOptions = {},
) {
  const o = { packets: true, ranges: true, ipv6: true, timeouts: true, list: true, ...opts };
  const needs: Need[] = [...(o.packets ? (['root', 'netns'] as Need[]) : []), ...(o.needs ?? [])];
  const req = requirements(`firewall contract: ${name}`, needs);

  describe.skipIf(req.skip)(`firewall contract: ${name}`, () => {
    let lan: Lan | undefined;
    let server: Host;
    let client: Host;
    let listener: { stop(): void } | undefined;
    let fw: Firewall;

    beforeAll(async () => {
      if (o.packets) {
        lan = await createLan(2, 'fwct');
        [server, client] = lan.hosts as [Host, Host];
        listener = await tcpListener(server, PORT);
      } else {
        server = localHost();
        client = { ...localHost(), v4: '198.51.100.2', v6: '2001:db8::2' };
      }
      fw = await make(server);
      await fw.init();
    }, 60_000);

    afterAll(async () => {
      await fw?.shutdown().catch(() => {});
      listener?.stop();
      await lan?.destroy();
    });

    // Each test starts from an empty firewall, whatever the previous one left behind.
    afterEach(async () => {
      if (!fw) return;
      const left = o.list ? await fw.list() : [];
      for (const e of left) fw.delete(e.target, e.set);
      if (fw.pending() > 0) await fw.commit();
    });

    const clientAddr = (f: 4 | 6) => (f === 4 ? client.v4 : client.v6);
    const serverAddr = (f: 4 | 6) => (f === 4 ? server.v4 : server.v6);
    // Ranges that hold the client (.2 / ::2) and a nested one, plus one that does not.
    const range = (f: 4 | 6) => parseTarget(f === 4 ? '198.51.100.0/28' : '2001:db8::/120');
    const inner = (f: 4 | 6) => parseTarget(f === 4 ? '198.51.100.0/30' : '2001:db8::/126');
    const elsewhere = (f: 4 | 6) => parseTarget(f === 4 ? '203.0.113.0/24' : '2001:db8:ffff::/48');

    async function expectReachable(f: 4 | 6, reachable: boolean) {
      if (!o.packets) return;
      let ok = await canConnect(client, serverAddr(f), PORT, reachable ? 3000 : BLOCKED_PROBE_MS);
      // A second try absorbs a slow IPv6 neighbour discovery on a loaded machine.
      if (reachable && !ok) ok = await canConnect(client, serverAddr(f), PORT, 3000);
      expect(
        ok,
        `client ${clientAddr(f)} → ${serverAddr(f)}:${PORT} should be ${reachable ? 'reachable' : 'blocked'}`,
      ).toBe(reachable);
    }

    async function listed(): Promise<Map<string, FirewallEntry>> {
      const all = await fw.list();
      return new Map(all.map((e) => [e.target.text, e]));
    }

    const families: Array<4 | 6> = o.ipv6 ? [4, 6] : [4];
    for (const f of families) {
      it(`${name} - IPv${f}: a ban of the client's address drops it, an unban lets it back`, async () => {
        const addr = parseTarget(clientAddr(f));
        await expectReachable(f, true);
        fw.add(addr, 600);
        expect(fw.pending()).toBe(1);
        const r = await fw.commit();
        expect(r.added).toBe(1);
        expect(fw.pending()).toBe(0);
        await expectReachable(f, false);
        if (o.list) expect((await listed()).has(addr.text)).toBe(true);
        fw.delete(addr);
        expect((await fw.commit()).deleted).toBe(1);
        await expectReachable(f, true);
        if (o.list) expect((await listed()).has(addr.text)).toBe(false);
      }, 30_000);

      // A backend without ranges must refuse one loudly, staging nothing, rather than skip a test.
      if (!o.ranges) {
        it(`${name} - IPv${f}: a range is refused with an error naming it, and nothing is staged`, () => {
          const before = fw.pending();
          expect(() => fw.add(range(f), 600)).toThrow(
            expect.objectContaining({ code: 'E_FIREWALL', message: expect.stringContaining(range(f).text) }),
          );
          expect(fw.pending()).toBe(before);
        });
      }

      if (o.ranges)
        it(`${name} - IPv${f}: a ban of a range containing the client drops it`, async () => {
          fw.add(elsewhere(f), 600);
          await fw.commit();
          await expectReachable(f, true);
          fw.add(range(f), 600);
          await fw.commit();
          await expectReachable(f, false);
          if (o.list) expect((await listed()).has(range(f).text)).toBe(true);
          fw.delete(range(f));
          await fw.commit();
          await expectReachable(f, true);
        }, 30_000);

      // Without per-element expiry (xt_recent's rule or fail2ban's jail decides), a ban must stay
      // until it is lifted: the agent then owns expiry, and a silent early unban would be a hole.
      if (!o.timeouts) {
        it(`${name} - IPv${f}: a ban stays in force past its nominal 2 s until it is lifted`, async () => {
          const addr = parseTarget(clientAddr(f));
          fw.add(addr, 2);
          await fw.commit();
          await new Promise((r) => setTimeout(r, 2600));
          await expectReachable(f, false);
          fw.delete(addr);
          await fw.commit();
          await expectReachable(f, true);
        }, 30_000);
      }

      if (o.timeouts)
        it(`${name} - IPv${f}: a 2 s ban expires by itself`, async () => {
          const addr = parseTarget(clientAddr(f));
          fw.add(addr, 2);
          await fw.commit();
          await expectReachable(f, false);
          await new Promise((r) => setTimeout(r, 2600));
          await expectReachable(f, true);
          if (o.list) expect((await listed()).has(addr.text)).toBe(false);
        }, 30_000);

      it(`${name} - IPv${f}: the same address twice, or inside a banned range, is not an error`, async () => {
        const addr = parseTarget(clientAddr(f));
        fw.add(addr, 600);
        fw.add(addr, 600);
        await fw.commit();
        fw.add(addr, 900);
        await expect(fw.commit()).resolves.toBeDefined();
        if (o.ranges) {
          fw.add(range(f), 600);
          await fw.commit();
          // A nested range and an address inside a banned range: neither may fail the batch.
          fw.add(inner(f), 600);
          fw.add(addr, 600);
          await expect(fw.commit()).resolves.toBeDefined();
          // Lifting the outer range leaves what was banned on its own.
          fw.delete(range(f));
          await fw.commit();
          await expectReachable(f, false);
          if (o.list) {
            const now = await listed();
            expect(now.has(range(f).text)).toBe(false);
            expect(now.has(inner(f).text)).toBe(true);
          }
          fw.delete(addr);
          await fw.commit();
          // Still inside the nested range.
          await expectReachable(f, false);
          fw.delete(inner(f));
          await fw.commit();
        } else {
          fw.delete(addr);
          await fw.commit();
        }
        await expectReachable(f, true);
      }, 40_000);

      if (o.list)
        it(`${name} - IPv${f}: list() returns what was added with the remaining time`, async () => {
          const addr = parseTarget(clientAddr(f));
          const perm = parseTarget(f === 4 ? '192.0.2.77' : '2001:db8:77::1');
          fw.add(addr, 600);
          fw.add(perm, null);
          if (o.ranges) fw.add(elsewhere(f), 3600);
          await fw.commit();
          const now = await listed();
          const a = now.get(addr.text);
          expect(a, `${addr.text} listed`).toBeDefined();
          expect(a!.target.family).toBe(f);
          if (o.timeouts) {
            expect(a!.timeout).toBeGreaterThan(590);
            expect(a!.timeout).toBeLessThanOrEqual(600);
          }
          expect(now.get(perm.text)?.timeout).toBeNull();
          if (o.ranges) {
            const r = now.get(elsewhere(f).text);
            expect(r?.target.prefix).toBe(elsewhere(f).prefix);
            if (o.timeouts) expect(r!.timeout).toBeGreaterThan(3590);
          }
          expect(now.size).toBe(o.ranges ? 3 : 2);
        }, 30_000);
    }

    if (o.driver)
      it(`${name} - reaches the kernel through the ${o.driver} driver`, () => {
        expect(fw.driver).toBe(o.driver);
      });

    it(`${name} - commit with nothing staged changes nothing; init and shutdown are idempotent`, async () => {
      expect(fw.pending()).toBe(0);
      expect(await fw.commit()).toEqual({ added: 0, deleted: 0 });
      await fw.init();
      await fw.init();
      if (o.list) expect(await fw.list()).toEqual([]);
    });
  });
}

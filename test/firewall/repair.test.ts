import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIPv4, parseTarget, type Target } from '../../src/core/address.js';
import { LibraryDriver } from '../../src/firewall/driver.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { sync } from '../../src/firewall/reconcile.js';
import type { FirewallEntry } from '../../src/firewall/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('nftables: a big reconcile repairs only the difference', [
  'root',
  'netns',
  'cmd:nft',
]);
const PORT = 8080;
const N = 50_000;

/** 10.x.y.z addresses, distinct for i < 2^24. */
const addr = (i: number): Target => parseTarget(formatIPv4((10 << 24) + i + 1));

describe.skipIf(req.skip)('nftables - repair of a big set (ADR 0043)', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  let kernel: LibraryDriver;
  beforeAll(async () => {
    lan = await createLan(2, 'rpr');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
    kernel = await LibraryDriver.open('nft', `/run/netns/${server.ns}`);
  }, 60_000);
  afterAll(async () => {
    await kernel?.close();
    listener?.stop();
    await lan?.destroy();
  });

  /** The namespace's nf_tables generation: it moves by one per committed transaction, anyone's. */
  const generation = async () => (await kernel.run(['--generation'])).generation!;
  const blocked = async () => !(await canConnect(client, server.v4, PORT, 800));
  /** Seconds left of one element, as nft prints it (`expires 59m57s...`); null without a timeout. */
  const expires = async (table: string, t: string): Promise<number | null> => {
    const out = await server.exec('nft', ['get', 'element', 'inet', table, 'blocklist_v4', `{ ${t} }`]);
    const m = /expires (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?/.exec(out);
    if (!m) return null;
    return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  };
  const held = async (table: string) => {
    const out = await server.exec('nft', ['-j', 'list', 'set', 'inet', table, 'blocklist_v4']);
    const doc = JSON.parse(out) as {
      nftables: Array<{ set?: { elem?: Array<string | { elem: { val: string } }> } }>;
    };
    const set = doc.nftables.find((x) => x.set)!.set!;
    return new Set((set.elem ?? []).map((e) => (typeof e === 'string' ? e : e.elem.val)));
  };

  it(`a drifted ${N}-element set gets back exactly what is missing, loses its strays, and keeps the rest untouched`, async () => {
    const table = 'repair_a';
    const fw = new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table, driver: 'library' });
    await fw.init();
    const desired: FirewallEntry[] = [];
    for (let i = 0; i < N; i++) desired.push({ target: addr(i), set: 'blocklist', timeout: 3600 });
    desired.push({ target: parseTarget(client.v4), set: 'blocklist', timeout: 3600 });
    // IPv6 too, one permanent: found again by their four words, so never re-added below.
    for (let i = 0; i < 1000; i++)
      desired.push({
        target: parseTarget(`2001:db8:1::${i.toString(16)}`),
        set: 'blocklist',
        timeout: i ? 3600 : null,
      });
    try {
      // An empty kernel: everything is added, in transactions of at most 20,000 elements.
      let g = await generation();
      const first = await sync(fw, desired);
      expect(first.strategy).toBe('repair');
      expect(first.counts).toEqual({ added: N + 1001, deleted: 0, renewed: 0, refilled: 0 });
      // The declaration, then three slices.
      expect((await generation()) - g).toBe(1 + Math.ceil((N + 1001) / 20_000));
      expect(await blocked()).toBe(true);

      // Nothing drifted: the generation says so, and nothing is read or written.
      g = await generation();
      expect((await sync(fw, desired)).counts).toEqual({ added: 0, deleted: 0, renewed: 0, refilled: 0 });
      expect(await generation()).toBe(g);

      // Drift from outside: 1,000 elements deleted, 300 strays added (one permanent), 200
      // elements given a short timeout, and the client's element deleted.
      const script: string[] = [];
      for (let i = 0; i < 1000; i++)
        script.push(`delete element inet ${table} blocklist_v4 { ${addr(i).text} }`);
      for (let i = 0; i < 300; i++) {
        const stray = i < 250 ? `192.0.2.${i}` : `203.0.113.${i - 250}`;
        script.push(`add element inet ${table} blocklist_v4 { ${stray}${i === 0 ? '' : ' timeout 1h'} }`);
      }
      for (let i = 1000; i < 1200; i++) {
        script.push(`delete element inet ${table} blocklist_v4 { ${addr(i).text} }`);
        script.push(`add element inet ${table} blocklist_v4 { ${addr(i).text} timeout 60s }`);
      }
      script.push(`delete element inet ${table} blocklist_v4 { ${client.v4} }`);
      await server.exec('nft', ['-f', '-'], { input: `${script.join('\n')}\n` });
      expect(await blocked()).toBe(false);
      const untouched = addr(40_000).text;
      const before = (await expires(table, untouched))!;

      const r = await sync(fw, desired);
      expect(r.strategy).toBe('repair');
      expect(r.counts).toEqual({ added: 1001, deleted: 300, renewed: 200, refilled: 0 });
      expect(await blocked()).toBe(true);
      const now = await held(table);
      expect(now.size).toBe(N + 1);
      for (const e of desired) if (e.target.family === 4) expect(now.has(e.target.text)).toBe(true);
      // Renewed: an hour again. Untouched: its timeout ran on (not re-added).
      expect(await expires(table, addr(1100).text)).toBeGreaterThan(3500);
      expect(await expires(table, untouched)).toBeLessThanOrEqual(before);

      // Verified again: the next pass is quiet.
      g = await generation();
      expect((await sync(fw, desired)).counts).toEqual({ added: 0, deleted: 0, renewed: 0, refilled: 0 });
      expect(await generation()).toBe(g);
    } finally {
      await fw.destroy();
      await fw.shutdown();
    }
  }, 240_000);

  it('a flushed set and a deleted table are refilled; a commit of 45,000 changes is bounded transactions', async () => {
    const table = 'repair_b';
    const fw = new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table, driver: 'library' });
    await fw.init();
    const desired: FirewallEntry[] = [];
    for (let i = 0; i < 45_000; i++) desired.push({ target: addr(i), set: 'blocklist', timeout: 3600 });
    desired.push({ target: parseTarget('2001:db8:77::/48'), set: 'blocklist', timeout: null });
    try {
      const g = await generation();
      const sent = fw.netlinkCommits.sent;
      for (const e of desired) fw.add(e.target, e.timeout, e.set);
      expect(await fw.commit()).toMatchObject({ added: 45_001 });
      // Slices of 20,000 (ADR 0043): the two of plain addresses as netlink transactions of 2,000
      // (ADR 0048), the last one, with the range, as one libnftables script.
      expect(fw.netlinkCommits.sent - sent).toBe(20);
      expect((await generation()) - g).toBe(21);
      expect((await sync(fw, desired)).counts).toEqual({ added: 0, deleted: 0, renewed: 0, refilled: 0 });

      await server.exec('nft', ['flush', 'set', 'inet', table, 'blocklist_v4']);
      expect((await sync(fw, desired)).counts).toEqual({
        added: 45_000,
        deleted: 0,
        renewed: 0,
        refilled: 0,
      });
      expect((await held(table)).size).toBe(45_000);

      // A flush between a scan (the agent makes it outside its commit lock) and the repair: that
      // scan is stale, and the repair looks again instead of trusting it.
      const early = await fw.scan();
      expect(early?.quiet).toBe(true);
      await server.exec('nft', ['flush', 'set', 'inet', table, 'blocklist_v4']);
      expect((await sync(fw, desired, { scan: early })).counts).toMatchObject({ added: 45_000 });
      expect((await held(table)).size).toBe(45_000);

      await server.exec('nft', ['delete', 'table', 'inet', table]);
      expect((await sync(fw, desired)).counts).toEqual({
        added: 45_001,
        deleted: 0,
        renewed: 0,
        refilled: 0,
      });
      expect((await held(table)).size).toBe(45_000);
      expect((await sync(fw, desired)).counts).toEqual({ added: 0, deleted: 0, renewed: 0, refilled: 0 });
    } finally {
      await fw.destroy();
      await fw.shutdown();
    }
  }, 240_000);

  it('a set refilled unread is not refilled again while only our transactions followed; a flush makes it so', async () => {
    const table = 'repair_d';
    const open = async () => {
      const f = new NftablesFirewall({
        prefix: ['ip', 'netns', 'exec', server.ns],
        table,
        driver: 'library',
      });
      await f.init();
      return f;
    };
    // Above what a scan's probe reads (8 messages of ≈ 600), so `refill` leaves it unread.
    const M = 8_000;
    const desired: FirewallEntry[] = [];
    for (let i = 0; i < M; i++) desired.push({ target: addr(i), set: 'blocklist', timeout: 3600 });
    const none = { added: 0, deleted: 0, renewed: 0, refilled: 0 };
    const before = await open();
    for (const e of desired) before.add(e.target, e.timeout, e.set);
    await before.commit();
    await before.shutdown();
    // The agent started again: its kernel set is full and not read (`refill`, as at a start).
    const fw = await open();
    try {
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual({
        ...none,
        refilled: M,
      });
      // Passes before the next whole read: nothing else committed, nothing to put back.
      let g = await generation();
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual(none);
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual(none);
      // The declaration only (idempotent), not eight thousand elements again.
      expect((await generation()) - g).toBeLessThanOrEqual(2);
      // Our own commits keep it so: a ban added through the firewall is in desired and the kernel.
      const more = { target: addr(M), set: 'blocklist', timeout: 3600 } as const;
      fw.add(more.target, more.timeout, more.set);
      await fw.commit();
      desired.push(more);
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual(none);
      // Anyone else's transaction breaks the chain (here one stray added): the next pass cannot
      // know what else changed, and puts everything back.
      await server.exec('nft', ['add', 'element', 'inet', table, 'blocklist_v4', '{ 10.255.0.1 }']);
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual({
        ...none,
        refilled: M + 1,
      });
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual(none);
      // Someone else's flush breaks the chain: the next pass reads the (now small) set and puts
      // everything back.
      await server.exec('nft', ['flush', 'set', 'inet', table, 'blocklist_v4']);
      expect((await sync(fw, desired, { strategy: 'repair', refill: true })).counts).toEqual({
        ...none,
        added: M + 1,
      });
      expect((await held(table)).size).toBe(M + 1);
      // A whole read then verifies it, and a pass after that reads one generation number.
      expect((await sync(fw, desired, { strategy: 'repair' })).counts).toEqual(none);
      g = await generation();
      expect((await sync(fw, desired, { strategy: 'repair' })).counts).toEqual(none);
      expect(await generation()).toBe(g);
    } finally {
      await fw.destroy();
      await fw.shutdown();
    }
  }, 240_000);

  it("a small set too: once verified, a pass reads nothing until someone else commits; `fresh` reads anyway (the agent's reconcile)", async () => {
    const table = 'repair_c';
    const fw = new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table, driver: 'library' });
    await fw.init();
    const desired: FirewallEntry[] = [0, 1, 2].map((i) => ({
      target: addr(i),
      set: 'blocklist',
      timeout: 3600,
    }));
    try {
      for (const e of desired) fw.add(e.target, e.timeout, e.set);
      await fw.commit();
      expect((await sync(fw, desired, { strategy: 'repair' })).counts).toEqual({
        added: 0,
        deleted: 0,
        renewed: 0,
        refilled: 0,
      });
      // Our own commits keep the chain: still nothing to read after another ban.
      desired.push({ target: addr(3), set: 'blocklist', timeout: 3600 });
      fw.add(desired[3]!.target, 3600, 'blocklist');
      await fw.commit();
      expect((await fw.scan())?.quiet).toBe(true);
      const fresh = await fw.scan({ fresh: true });
      expect(fresh?.quiet).toBe(false);
      expect(fresh?.unread.size).toBe(0);
      // A pass verifies it again: quiet from there while only our transactions follow.
      await sync(fw, desired, { strategy: 'repair' });
      expect((await fw.scan())?.quiet).toBe(true);
      // Someone else's element: the chain breaks, the next pass reads and removes it. A ban of our
      // own committed after it does not hide it (the generation is read after our batch only, ADR
      // 0066: the foreign transaction shows as a step of two).
      await server.exec('nft', ['add', 'element', 'inet', table, 'blocklist_v4', '{ 192.0.2.99 }']);
      desired.push({ target: addr(4), set: 'blocklist', timeout: 3600 });
      fw.add(desired[4]!.target, 3600, 'blocklist');
      await fw.commit();
      const scan = await fw.scan();
      expect(scan?.quiet).toBe(false);
      expect((await sync(fw, desired, { scan, strategy: 'repair' })).counts).toMatchObject({ deleted: 1 });
      expect([...(await held(table))].sort()).toEqual(desired.map((e) => e.target.text).sort());
    } finally {
      await fw.destroy();
      await fw.shutdown();
    }
  }, 60_000);
});

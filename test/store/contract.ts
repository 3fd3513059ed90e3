import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import type { DecisionInput, Store } from '../../src/store/types.js';

/** What an implementation gives the contract: fresh stores, and a second handle on the same data. */
export interface StoreFactory {
  /** A new, empty store. */
  create(): Promise<Store>;
  /** Another handle on the data of `store` (a second connection, or a reopen after close). */
  reopen(store: Store): Promise<Store>;
}

export function ban(target: string, at: number, over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    action: 'ban',
    target,
    family: target.includes(':') ? 6 : 4,
    duration: 3600,
    expiresAt: at + 3600_000,
    reason: 'test',
    rule: 'sshd',
    origin: 'web1',
    createdAt: at,
    set: 'blocklist',
    ...over,
  };
}

export function unban(target: string, at: number): DecisionInput {
  return { ...ban(target, at), action: 'unban', duration: null, expiresAt: null };
}

/** The behaviour every Store must have; run it against each implementation. */
export function storeContract(name: string, factory: StoreFactory): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    const extra: Store[] = [];
    const T0 = 1_700_000_000_000;

    beforeEach(async () => {
      store = await factory.create();
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await store.close();
    });

    const reopen = async (): Promise<Store> => {
      const s = await factory.reopen(store);
      extra.push(s);
      return s;
    };

    it('an empty log has head 0 and nothing since 0', async () => {
      expect(await store.head()).toBe(0);
      expect(await store.oldestRetained()).toBe(1);
      expect(await store.since(0, 100)).toEqual([]);
      expect(await store.active(T0)).toEqual([]);
    });

    it('append gives consecutive seqs and returns the stored decisions', async () => {
      const a = await store.append([ban('192.0.2.1', T0), ban('2001:db8::1', T0)]);
      const b = await store.append([unban('192.0.2.1', T0 + 1)]);
      expect([...a, ...b].map((d) => d.seq)).toEqual([1, 2, 3]);
      expect(a[0]!.id).toMatch(/[0-9a-f-]{36}/);
      expect(await store.head()).toBe(3);
      const all = await store.since(0, 100);
      expect(all).toEqual([...a, ...b]);
      expect(all[1]).toMatchObject({ target: '2001:db8::1', family: 6, duration: 3600, set: 'blocklist' });
      expect(await store.since(1, 1)).toEqual([a[1]]);
      expect(await store.since(3, 10)).toEqual([]);
    });

    it('a permanent ban round-trips null duration and expiry', async () => {
      await store.append([ban('192.0.2.9', T0, { duration: null, expiresAt: null })]);
      const [d] = await store.since(0, 1);
      expect(d).toMatchObject({ duration: null, expiresAt: null });
      expect(await store.active(T0 + 1e12)).toHaveLength(1);
    });

    it('active holds the latest ban per target and set, drops unbanned and expired ones', async () => {
      await store.append([
        ban('192.0.2.1', T0),
        ban('192.0.2.1', T0 + 10, { expiresAt: T0 + 7200_000, reason: 'longer' }),
        ban('192.0.2.1', T0, { set: 'web' }),
        ban('192.0.2.2', T0, { expiresAt: T0 + 1000 }),
        ban('192.0.2.3', T0),
      ]);
      await store.append([unban('192.0.2.3', T0 + 20)]);
      const act = await store.active(T0 + 2000);
      expect(act.map((d) => `${d.target}@${d.set}:${d.reason}`).sort()).toEqual([
        '192.0.2.1@blocklist:longer',
        '192.0.2.1@web:test',
      ]);
      expect((await store.activeFor('192.0.2.1', 'blocklist', T0))?.seq).toBe(2);
      expect(await store.activeFor('192.0.2.2', 'blocklist', T0 + 1000)).toBeUndefined();
      expect(await store.activeFor('192.0.2.3', 'blocklist', T0)).toBeUndefined();
    });

    it('lookUp, where a store has it, reads a batch at once and agrees with activeFor and banHistory item by item', async () => {
      if (!store.lookUp) return;
      const T = T0;
      // More targets than one statement of the SQLite store's takes (64), some asked twice.
      const many = Array.from({ length: 150 }, (_, i) => `198.51.100.${i}`);
      await store.append(
        [
          ban('192.0.2.1', T),
          ban('192.0.2.2', T, { expiresAt: T + 10 }),
          ban('2001:db8::1', T, { set: 'web' }),
          ...many.filter((_, i) => i % 3 === 0).map((t) => ban(t, T)),
        ],
        [
          { target: '192.0.2.1', at: T },
          { target: '192.0.2.1', at: T + 1 },
          { target: '2001:db8::1', at: T },
          ...many.filter((_, i) => i % 5 === 0).map((t) => ({ target: t, at: T })),
        ],
      );
      await store.append([unban('192.0.2.1', T + 5)]);
      await store.append([ban('192.0.2.1', T + 6)]);
      const pairs = [
        { target: '192.0.2.1', set: 'blocklist' },
        { target: '192.0.2.2', set: 'blocklist' },
        { target: '2001:db8::1', set: 'web' },
        { target: '2001:db8::1', set: 'blocklist' },
        { target: '203.0.113.7', set: 'blocklist' },
        ...many.map((t) => ({ target: t, set: 'blocklist' })),
        { target: many[3]!, set: 'blocklist' },
      ];
      const now = T + 100;
      const got = await store.lookUp(pairs, now);
      expect(got.active).toHaveLength(pairs.length);
      for (const [i, p] of pairs.entries()) {
        expect(got.active[i], p.target).toEqual(await store.activeFor(p.target, p.set, now));
        expect(got.history.get(p.target) ?? 0, p.target).toBe((await store.banHistory(p.target)).count);
      }
      // The ban made after the unban, not the first one.
      expect(got.active[0]!.createdAt).toBe(T + 6);
      expect(got.active[1]).toBeUndefined();
      expect(got.history.get('192.0.2.1')).toBe(2);
      expect(got.active.filter(Boolean)).toHaveLength(2 + 50 + 1);
      // Without the counts (a bulk import): the same bans in force, no history read.
      const bare = await store.lookUp(pairs, now, { history: false });
      expect(bare.active).toEqual(got.active);
      expect(bare.history.size).toBe(0);
    });

    it('prune removes old entries, keeps bans still in force, and never lowers head', async () => {
      await store.append([
        ban('192.0.2.1', T0, { expiresAt: T0 + 10 }),
        ban('192.0.2.2', T0, { expiresAt: null }),
      ]);
      await store.append([ban('192.0.2.3', T0 + 5000)]);
      const removed = await store.prune(T0 + 1000, T0 + 100);
      expect(removed).toBe(1);
      expect(await store.oldestRetained()).toBe(3);
      expect(await store.head()).toBe(3);
      expect((await store.active(T0 + 100)).map((d) => d.target).sort()).toEqual(['192.0.2.2', '192.0.2.3']);
      const [next] = await store.append([ban('192.0.2.4', T0 + 6000)]);
      expect(next!.seq).toBe(4);
      await store.prune(T0 + 1e9, T0 + 100);
      await store.prune(T0, T0 + 100); // an older cutoff must not move the mark back
      expect(await store.oldestRetained()).toBe(5);
      expect(await store.head()).toBe(4);
    });

    it('seq has no gaps across a reopen and with two handles writing in turn', async () => {
      await store.append([ban('192.0.2.1', T0)]);
      const other = await reopen();
      expect(await other.head()).toBe(1);
      for (let i = 0; i < 20; i++) {
        await (i % 2 ? store : other).append([ban(`192.0.2.${10 + i}`, T0 + i)]);
      }
      const all = await store.since(0, 1000);
      expect(all.map((d) => d.seq)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    });

    it('seq has no gaps under concurrent appends', async () => {
      const other = await reopen();
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 ? store : other).append([ban(`198.51.100.${i}`, T0), ban(`203.0.113.${i}`, T0)]),
        ),
      );
      const seqs = (await store.since(0, 1000)).map((d) => d.seq);
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    });

    it('nodes: invite, enrol once with the right secret, look up by token, touch, remove', async () => {
      const n = await store.addNode('web1', 'secret-hash', T0);
      expect(n).toMatchObject({
        name: 'web1',
        publicKey: null,
        joinSecretHash: 'secret-hash',
        lastSeq: 0,
        removedAt: null,
      });
      await expect(store.addNode('web1', 'x', T0)).rejects.toThrow(/already exists/);
      expect(await store.enrolNode('web1', 'wrong', 'pk', 'tok')).toBe(false);
      expect(await store.enrolNode('web1', 'secret-hash', 'pk', 'tok')).toBe(true);
      expect(await store.enrolNode('web1', 'secret-hash', 'pk2', 'tok2')).toBe(false);
      expect(await store.nodeByTokenHash('tok')).toMatchObject({
        name: 'web1',
        publicKey: 'pk',
        joinSecretHash: null,
      });
      expect((await store.getNode('web1'))!.reads).toBeNull();
      await store.touchNode('web1', {
        lastSeq: 7,
        lastSeen: T0 + 5,
        version: '0.1.0',
        reads: 'decisions-packed',
      });
      await store.touchNode('web1', { lastSeen: T0 + 6 });
      expect(await store.getNode('web1')).toMatchObject({
        lastSeq: 7,
        lastSeen: T0 + 6,
        version: '0.1.0',
        reads: 'decisions-packed',
      });
      // What another hub on the same store reads back: a node that says it reads nothing more.
      await store.touchNode('web1', { lastSeen: T0 + 7, reads: '' });
      expect((await store.listNodes()).find((n) => n.name === 'web1')!.reads).toBe('');
      expect(await store.removeNode('web1', T0 + 9)).toBe(true);
      expect(await store.removeNode('web1', T0 + 9)).toBe(false);
      expect(await store.nodeByTokenHash('tok')).toBeUndefined();
      expect((await store.listNodes())[0]).toMatchObject({ name: 'web1', removedAt: T0 + 9 });
      // A removed name can be invited again, starting fresh.
      expect(await store.addNode('web1', 'again', T0 + 10)).toMatchObject({
        removedAt: null,
        publicKey: null,
      });
      expect(await store.getNode('nope')).toBeUndefined();
    });

    it('allowlist: add (idempotent, comment updated), list, remove', async () => {
      await store.allowAdd({ cidr: '10.0.0.0/8', comment: 'lan', createdAt: T0 });
      await store.allowAdd({ cidr: '2001:db8::/32', comment: '', createdAt: T0 + 1 });
      await store.allowAdd({ cidr: '10.0.0.0/8', comment: 'office', createdAt: T0 + 2 });
      expect(await store.allowList()).toEqual([
        { cidr: '10.0.0.0/8', comment: 'office', createdAt: T0 },
        { cidr: '2001:db8::/32', comment: '', createdAt: T0 + 1 },
      ]);
      expect(await store.allowRemove('10.0.0.0/8')).toBe(true);
      expect(await store.allowRemove('10.0.0.0/8')).toBe(false);
      expect(await store.allowList()).toHaveLength(1);
    });

    it('append records offences in the same transaction', async () => {
      await store.append([ban('192.0.2.5', T0)], [{ target: '192.0.2.5', at: T0 }]);
      expect(await store.banHistory('192.0.2.5')).toEqual({ count: 1, lastAt: T0 });
    });

    it('ban history counts bans per address', async () => {
      expect(await store.banHistory('192.0.2.1')).toEqual({ count: 0, lastAt: null });
      await store.recordBan('192.0.2.1', T0);
      await store.recordBan('192.0.2.1', T0 + 5);
      expect(await store.banHistory('192.0.2.1')).toEqual({ count: 2, lastAt: T0 + 5 });
    });

    it('meta stores and overwrites values, survives a reopen', async () => {
      expect(await store.getMeta('fleet')).toBeUndefined();
      await store.setMeta('fleet', 'a');
      await store.setMeta('fleet', 'b');
      expect(await (await reopen()).getMeta('fleet')).toBe('b');
    });

    it('countActive follows bans, unbans, replacements, expiry and pruning without listing', async () => {
      await store.append([
        ban('192.0.2.1', T0),
        ban('192.0.2.2', T0, { origin: 'web2', rule: 'nginx' }),
        ban('2001:db8::1', T0, { expiresAt: T0 + 1000 }),
        ban('198.51.100.0/24', T0, { origin: 'operator', rule: 'manual', expiresAt: null }),
      ]);
      expect(await store.countActive(T0)).toEqual({
        total: 4,
        byFamily: { 4: 3, 6: 1 },
        byOrigin: { web1: 2, web2: 1, operator: 1 },
        byRule: { sshd: 2, nginx: 1, manual: 1 },
      });
      // A ban replaced by another origin moves between buckets; an unban leaves; expiry counts at once.
      await store.append([ban('192.0.2.1', T0 + 1, { origin: 'web2' }), unban('192.0.2.2', T0 + 2)]);
      const later = await store.countActive(T0 + 1000);
      expect(later).toMatchObject({ total: 2, byFamily: { 4: 2, 6: 0 }, byOrigin: { web2: 1, operator: 1 } });
      await store.prune(T0, T0 + 1000);
      expect(await store.countActive(T0 + 1000)).toEqual(later);
      await expect((await reopen()).countActive(T0 + 1000)).resolves.toEqual(later);
    });

    it('activePage pages newest first with a cursor, and filters by origin, rule, set, time and target', async () => {
      const items: DecisionInput[] = [];
      for (let i = 0; i < 25; i++) {
        items.push(
          ban(`192.0.2.${i + 1}`, T0 + i, {
            origin: i % 2 ? 'web1' : 'web2',
            rule: i % 5 ? 'sshd' : 'nginx',
          }),
        );
      }
      items.push(ban('198.51.100.0/24', T0 + 100, { origin: 'operator', rule: 'manual' }));
      items.push(ban('2001:db8::/48', T0 + 101, { set: 'web' }));
      items.push(ban('2001:db8::5', T0 + 102));
      items.push(ban('203.0.113.9', T0 + 103, { expiresAt: T0 + 104 }));
      await store.append(items);
      const now = T0 + 200;
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.activePage({ limit: 10, cursor }, now);
        expect(page.total).toBe(28);
        expect(page.items.length).toBeLessThanOrEqual(10);
        seen.push(...page.items.map((d) => d.target));
        cursor = page.next ?? undefined;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen[0]).toBe('2001:db8::5');
      expect(new Set(seen).size).toBe(28);
      expect(seen).not.toContain('203.0.113.9');

      const web1 = await store.activePage({ limit: 100, origin: 'web1' }, now);
      expect(web1.total).toBe(14);
      expect(web1.items.every((d) => d.origin === 'web1')).toBe(true);
      const nginxWeb2 = await store.activePage({ limit: 100, origin: 'web2', rule: 'nginx' }, now);
      expect(nginxWeb2.items.map((d) => d.target).sort()).toEqual(['192.0.2.1', '192.0.2.11', '192.0.2.21']);
      expect(nginxWeb2.total).toBe(3);
      const recent = await store.activePage({ limit: 100, since: T0 + 22 }, now);
      expect(recent.items.map((d) => d.target)).toEqual([
        '2001:db8::5',
        '2001:db8::/48',
        '198.51.100.0/24',
        '192.0.2.25',
        '192.0.2.24',
        '192.0.2.23',
      ]);
      expect(recent.total).toBe(6);
      expect((await store.activePage({ limit: 100, set: 'web' }, now)).items.map((d) => d.target)).toEqual([
        '2001:db8::/48',
      ]);

      // Containment: an address inside a banned range finds the range; a range finds what it holds.
      const inside = await store.activePage({ limit: 100, target: parseTarget('198.51.100.7') }, now);
      expect(inside.items.map((d) => d.target)).toEqual(['198.51.100.0/24']);
      expect(inside.total).toBe(1);
      const v6 = await store.activePage({ limit: 100, target: parseTarget('2001:db8::5') }, now);
      expect(v6.items.map((d) => d.target)).toEqual(['2001:db8::5', '2001:db8::/48']);
      const range = await store.activePage({ limit: 2, target: parseTarget('192.0.2.0/28') }, now);
      expect(range.total).toBe(15);
      expect(range.items.map((d) => d.target)).toEqual(['192.0.2.15', '192.0.2.14']);
      const rest = await store.activePage(
        { limit: 100, target: parseTarget('192.0.2.0/28'), cursor: range.next! },
        now,
      );
      expect(rest.items).toHaveLength(13);
      expect(rest.next).toBeNull();
      expect(
        (await store.activePage({ limit: 5, target: parseTarget('203.0.113.0/24') }, now)).items,
      ).toEqual([]);
    });

    it('activeOrdered pages the bans in force in (target, set) order, filtered by family and set', async () => {
      await store.append([
        ban('198.51.100.0/24', T0),
        ban('192.0.2.2', T0),
        ban('192.0.2.2', T0, { set: 'web' }),
        ban('2001:db8::1', T0),
        ban('192.0.2.9', T0 - 7200_000, { expiresAt: T0 - 1 }),
        ban('203.0.113.5', T0),
        unban('203.0.113.5', T0),
      ]);
      const keys = (ds: { target: string; set: string }[]) => ds.map((d) => `${d.target}@${d.set}`);
      const all = [
        '192.0.2.2@blocklist',
        '192.0.2.2@web',
        '198.51.100.0/24@blocklist',
        '2001:db8::1@blocklist',
      ];
      expect(keys(await store.activeOrdered({ limit: 100 }, T0))).toEqual(all);
      const first = await store.activeOrdered({ limit: 2 }, T0);
      expect(keys(first)).toEqual(all.slice(0, 2));
      const last = first.at(-1)!;
      const rest = await store.activeOrdered(
        { limit: 100, after: { target: last.target, set: last.set } },
        T0,
      );
      expect(keys(rest)).toEqual(all.slice(2));
      expect(keys(await store.activeOrdered({ limit: 100, family: 6 }, T0))).toEqual([
        '2001:db8::1@blocklist',
      ]);
      expect(keys(await store.activeOrdered({ limit: 100, family: 4, set: 'web' }, T0))).toEqual([
        '192.0.2.2@web',
      ]);
      await expect(store.activeOrdered({ limit: 0 }, T0)).rejects.toMatchObject({ code: 'E_USAGE' });
    });

    it('banCounts counts bans (not unbans) per bucket inside the window only', async () => {
      await store.append([
        ban('192.0.2.1', T0 - 1),
        ban('192.0.2.2', T0),
        ban('192.0.2.3', T0 + 59_999),
        ban('192.0.2.4', T0 + 120_000),
        unban('192.0.2.4', T0 + 120_001),
        ban('192.0.2.5', T0 + 180_000),
      ]);
      expect(await store.banCounts(T0, 60_000, 3)).toEqual([2, 0, 1]);
      expect(await store.banCounts(T0 + 3_600_000, 60_000, 2)).toEqual([0, 0]);
    });

    it('activePage refuses a forged cursor and an out-of-range limit with E_USAGE', async () => {
      await expect(store.activePage({ limit: 10, cursor: "1' OR 1=1" }, T0)).rejects.toMatchObject({
        code: 'E_USAGE',
      });
      await expect(store.activePage({ limit: 0 }, T0)).rejects.toMatchObject({ code: 'E_USAGE' });
      await expect(store.activePage({ limit: 10_001 }, T0)).rejects.toMatchObject({ code: 'E_USAGE' });
    });
  });
}

import { type AddressInfo, createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/types.js';
import { admin, createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { requirements } from '../helpers/requirements.js';
import { ban, storeContract, unban } from './contract.js';

const req = requirements('store: PostgreSQL', ['tcp:5432']);
const dbs: TestDatabase[] = [];
const urls = new WeakMap<Store, string>();
afterAll(async () => {
  for (const db of dbs.splice(0)) await db.drop();
});

async function freshStore(
  opts: { retryMs?: number } = {},
): Promise<{ store: PostgresStore; db: TestDatabase }> {
  const db = await createTestDatabase();
  dbs.push(db);
  const store = await PostgresStore.open({ url: db.url, ...opts });
  urls.set(store, db.url);
  return { store, db };
}

describe.skipIf(req.skip)('postgres', () => {
  storeContract('postgres', {
    create: async () => (await freshStore()).store,
    reopen: (store) => PostgresStore.open({ url: urls.get(store)! }),
  });

  describe('postgres store specifics', () => {
    it('four hubs appending at once get unique, gap-free seqs, and a reader never sees a hole', async () => {
      const { store, db } = await freshStore();
      const hubs = [store, ...(await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url: db.url }))))];
      let reading = true;
      const holes: string[] = [];
      // A reader polling the log must see a prefix 1..n at every moment, or an agent would skip.
      const reader = (async () => {
        while (reading) {
          const seqs = (await store.since(0, 100_000)).map((d) => d.seq);
          if (seqs.some((s, i) => s !== i + 1)) holes.push(seqs.join(','));
        }
      })();
      await Promise.all(
        hubs.flatMap((h, k) =>
          Array.from({ length: 40 }, (_, i) =>
            h.append([ban(`198.51.100.${i}`, k * 1000 + i), ban(`203.0.113.${i}`, k * 1000 + i)]),
          ),
        ),
      );
      reading = false;
      await reader;
      const seqs = (await store.since(0, 100_000)).map((d) => d.seq);
      expect(seqs).toEqual(Array.from({ length: 4 * 40 * 2 }, (_, i) => i + 1));
      expect(await store.head()).toBe(320);
      expect(holes).toEqual([]);
      for (const h of hubs.slice(1)) await h.close();
      await store.close();
    });

    it('two hubs banning and unbanning the same addresses at once: the active set is the last decision per address, offences all counted', async () => {
      const { store, db } = await freshStore();
      const other = await PostgresStore.open({ url: db.url });
      const pool = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '2001:db8::1'];
      const T = 1_700_000_000_000;
      // Each batch repeats addresses (ban then unban, ban twice): the batch's last word must win,
      // and a hub that waited on the other's lock must see what the other committed meanwhile.
      const batches = (k: number) =>
        Array.from({ length: 40 }, (_, i) => {
          const a = pool[(i + k) % pool.length]!;
          const b = pool[(i * 3 + k) % pool.length]!;
          const decisions =
            i % 3 === 0 ? [ban(a, T), unban(b, T), ban(b, T)] : [ban(a, T), unban(a, T), ban(b, T)];
          const offences = decisions
            .filter((d) => d.action === 'ban')
            .map((d) => ({ target: d.target, at: T }));
          return { decisions, offences };
        });
      const work = [0, 1].map(batches);
      await Promise.all(
        [store, other].map(async (h, k) => {
          for (const b of work[k]!) await h.append(b.decisions, b.offences);
        }),
      );
      const log = await store.since(0, 10_000);
      expect(log.map((d) => d.seq)).toEqual(Array.from({ length: 2 * 40 * 3 }, (_, i) => i + 1));
      for (const target of pool) {
        const lastWord = log.filter((d) => d.target === target).at(-1)!;
        const active = await other.activeFor(target, 'blocklist', T);
        expect(active?.seq, target).toBe(lastWord.action === 'ban' ? lastWord.seq : undefined);
        const offences = work
          .flat()
          .flatMap((b) => b.offences)
          .filter((o) => o.target === target).length;
        expect((await store.banHistory(target)).count, target).toBe(offences);
      }
      await other.close();
      await store.close();
    });

    it('appends survive their connections being killed mid-load: nothing lost, nothing doubled', async () => {
      const { store, db } = await freshStore({ retryMs: 20 });
      let killed = 0;
      const kills = (async () => {
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 30));
          const r = await admin(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [db.name],
          );
          killed += r.rowCount ?? 0;
        }
      })();
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          store.append([ban(`192.0.2.${i % 250}`, i, { origin: `n${i}` })]),
        ),
      );
      await kills;
      expect(killed).toBeGreaterThan(0);
      const log = await store.since(0, 10_000);
      expect(log.map((d) => d.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      expect(new Set(log.map((d) => d.origin)).size).toBe(200);
      expect(results.map((r) => r[0]!.seq).sort((a, b) => a - b)).toEqual(log.map((d) => d.seq));
      await store.close();
    });

    it('a failed batch appends nothing and leaves head unchanged', async () => {
      const { store } = await freshStore();
      await store.append([ban('192.0.2.1', 1)]);
      await expect(
        store.append([ban('192.0.2.2', 2, { id: 'dup' }), ban('192.0.2.3', 3, { id: 'dup' })]),
      ).rejects.toMatchObject({ code: 'E_STORE' });
      expect(await store.head()).toBe(1);
      expect((await store.append([ban('192.0.2.4', 4)]))[0]!.seq).toBe(2);
      await store.close();
    });

    it('a database from a newer rampart is refused with E_STORE, not migrated down', async () => {
      const { store, db } = await freshStore();
      await store.close();
      const c = await PostgresStore.open({ url: db.url });
      await c.close();
      const pg = (await import('pg')).default;
      const raw = new pg.Client({ connectionString: db.url });
      await raw.connect();
      await raw.query('UPDATE rampart_schema SET version = 99');
      await raw.end();
      await expect(PostgresStore.open({ url: db.url })).rejects.toMatchObject({
        code: 'E_STORE',
        message: expect.stringContaining('schema version 99 is newer'),
      });
    });

    it('an unreachable server is one E_STORE naming the URL without its password', async () => {
      const err = await PostgresStore.open({ url: 'postgres://u:hunter2@127.0.0.1:1/x', retries: 0 }).catch(
        (e) => e,
      );
      expect(err).toMatchObject({ code: 'E_STORE' });
      expect(err.message).toContain('127.0.0.1:1');
      expect(err.message).not.toContain('hunter2');
    });

    it('a server that accepts and never answers is an E_STORE after the connect timeout, not a hang', async () => {
      const silent = createServer(() => undefined);
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as AddressInfo).port;
      try {
        const t0 = Date.now();
        const err = await PostgresStore.open({
          url: `postgres://u:hunter2@127.0.0.1:${port}/x`,
          connectTimeoutMs: 300,
        }).catch((e) => e);
        expect(err).toMatchObject({ code: 'E_STORE' });
        expect(err.message).toContain(`127.0.0.1:${port}`);
        expect(err.message).toMatch(/timeout/);
        expect(err.message).not.toContain('hunter2');
        expect(Date.now() - t0).toBeLessThan(5_000);
      } finally {
        silent.close();
      }
    });
  });
});

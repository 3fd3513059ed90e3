import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres.js';
import { PG_PROBES } from '../../src/store/postgres-probes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('store: PostgreSQL key probes', ['tcp:5432']);

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

/** Every table a plan reads with a sequential scan. */
function seqScanned(node: PlanNode, out: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) out.push(node['Relation Name']);
  for (const child of node.Plans ?? []) seqScanned(child, out);
  return out;
}

describe.skipIf(req.skip)('PostgreSQL key probes on a large log', () => {
  let db: TestDatabase;
  let c: pg.Client;
  const keys = Array.from({ length: 2_000 }, (_, i) => `2001:db8:7::${(i + 2).toString(16)}`);

  beforeAll(async () => {
    db = await createTestDatabase();
    await (await PostgresStore.open({ url: db.url })).close();
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
    // 100,000 bans written straight in, half of them the keys' neighbours: what a fleet's log
    // holds after a bulk import, with the planner's statistics as stale as after one.
    await c.query(`INSERT INTO decisions (seq, id, action, target, family, duration, expires_at, reason, rule, origin, created_at, set_name)
      SELECT g, 'id-' || g, 'ban', '2001:db8:' || to_hex(g) || '::1', 6, 3600, 9e12, 'r', 'manual', 'operator', 0, 'blocklist'
      FROM generate_series(1, 100000) g`);
    await c.query(`INSERT INTO active (target, set_name, seq, expires_at)
      SELECT target, set_name, seq, expires_at FROM decisions`);
    await c.query('INSERT INTO ban_history (target, count, last_at) SELECT target, 1, 0 FROM decisions');
    await c.query('UPDATE log_head SET seq = 100000');
  }, 60_000);

  afterAll(async () => {
    await c?.end();
    await db?.drop();
  });

  const plans = async () => ({
    inForce: await c.query(`EXPLAIN (FORMAT JSON) ${PG_PROBES.inForce}`, [
      keys,
      keys.map(() => 'blocklist'),
      0,
    ]),
    banCounts: await c.query(`EXPLAIN (FORMAT JSON) ${PG_PROBES.banCounts}`, [keys]),
    decisionsById: await c.query(`EXPLAIN (FORMAT JSON) ${PG_PROBES.decisionsById}`, [keys]),
  });

  it('looks up 2,000 keys by index, whether or not the statistics are fresh', async () => {
    for (const when of ['stale statistics', 'after ANALYZE']) {
      if (when === 'after ANALYZE') await c.query('ANALYZE');
      for (const [name, r] of Object.entries(await plans())) {
        const plan = (r.rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan;
        expect({ name, when, seq: seqScanned(plan) }).toEqual({ name, when, seq: [] });
      }
    }
  });

  it('finds what is there and only that', async () => {
    const present = ['2001:db8:a::1', '2001:db8:186a0::1'];
    const asked = [...present, '2001:db8:7::abc'];
    const active = await c.query(PG_PROBES.inForce, [asked, asked.map(() => 'blocklist'), 0]);
    expect(active.rows.map((r) => [r.target, Number(r.seq)])).toEqual([
      ['2001:db8:a::1', 10],
      ['2001:db8:186a0::1', 100000],
    ]);
    const expired = await c.query(PG_PROBES.inForce, [asked, asked.map(() => 'blocklist'), 1e13]);
    expect(expired.rowCount).toBe(0);
    const counts = await c.query(PG_PROBES.banCounts, [asked]);
    expect(counts.rows.map((r) => r.target).sort()).toEqual([...present].sort());
    const byId = await c.query(PG_PROBES.decisionsById, [['id-7', 'id-3', 'missing']]);
    expect(byId.rows.map((r) => r.id)).toEqual(['id-3', 'id-7']);
  });
});

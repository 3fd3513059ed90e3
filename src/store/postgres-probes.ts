/**
 * Statements that look up a list of keys (a bulk request's 2,000 targets, an append's ids) with
 * one index probe per key: `unnest` of the keys, `CROSS JOIN LATERAL` a subquery with `OFFSET 0`,
 * which keeps the planner from flattening it into a join. Flattened, it hash-joined the keys
 * against a seq scan of the whole table, so every bulk request cost time that grew with the
 * fleet's bans: 121 ms against 7 for 2,000 keys at 200,000 bans. Its cost model prices a probe as
 * a disk read; these tables are in memory.
 */
function probe(table: string, where: string): string {
  return `SELECT * FROM ${table} WHERE ${where} OFFSET 0`;
}

export const PG_PROBES = {
  /** $1 targets, $2 set names, $3 now: the ban in force per pair, as full log rows. */
  inForce: `SELECT d.* FROM unnest($1::text[], $2::text[]) AS k(target, set_name)
    CROSS JOIN LATERAL (${probe('active', 'target = k.target AND set_name = k.set_name')}) a
    JOIN decisions d ON d.seq = a.seq
    WHERE a.expires_at IS NULL OR a.expires_at > $3`,
  /** $1 distinct targets: how often each was banned. */
  banCounts: `SELECT h.target, h.count FROM unnest($1::text[]) AS k(target)
    CROSS JOIN LATERAL (${probe('ban_history', 'target = k.target')}) h`,
  /** $1 decision ids: the rows an append whose reply was lost may have written. */
  decisionsById: `SELECT d.* FROM unnest($1::text[]) AS k(id)
    CROSS JOIN LATERAL (${probe('decisions', 'id = k.id')}) d ORDER BY d.seq`,
} as const;

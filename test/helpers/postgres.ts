import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server tests use; CI's .ci/run starts PostgreSQL on the default port with trust auth. */
export const PG_ADMIN_URL = process.env.RAMPART_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  /** Drops the database, ending any connection still on it. */
  drop(): Promise<void>;
}

/** Creates `rampart_test_<random>` so suites running side by side never share tables. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `rampart_test_${randomBytes(6).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    drop: async () => {
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Runs one statement as the admin user (names come from createTestDatabase, never from input). */
export async function admin(sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await c.query(sql, values);
  } finally {
    await c.end();
  }
}

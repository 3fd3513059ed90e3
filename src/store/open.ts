import { ConfigError } from '../core/errors.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** `hub.store` / `--store`: a PostgreSQL URL; anything else is rejected rather than guessed. */
export const STORE_URL = /^postgres(ql)?:\/\/[^\s]+$/;

/**
 * The hub's store: SQLite in the hub folder by default (zero configuration), PostgreSQL when a
 * `postgres://` URL is given (several hubs on one database).
 */
export async function openStore(
  url: string | undefined,
  sqliteFile: string,
  where: { file?: string; key: string } = { key: 'hub.store' },
): Promise<Store> {
  if (url === undefined) return new SqliteStore(sqliteFile);
  if (!STORE_URL.test(url)) {
    throw new ConfigError('expected postgres://user[:password]@host[:port]/database', where);
  }
  const { PostgresStore } = await import('./postgres.js');
  return PostgresStore.open({ url });
}

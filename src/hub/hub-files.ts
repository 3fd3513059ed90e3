import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RampartError } from '../core/errors.js';
import { type KeyPair, loadOrCreateKeyPair } from '../trust/keys.js';
import { readSecretFile, writeSecretFile } from '../trust/secret-file.js';

/** File names in `DATA/hub/`; the CLI reads `hub.json` and `admin.token` to find the hub with no flags. */
export const HUB_FILES = {
  db: 'hub.db',
  key: 'hub.key',
  adminToken: 'admin.token',
  /** Read-only token for Prometheus scrapes of /metrics. */
  metricsToken: 'metrics.token',
  /** Read-only token for the dashboard: sees everything it shows, changes nothing. */
  viewerToken: 'viewer.token',
  info: 'hub.json',
  /**
   * This hub's own id (hubs of one fleet share hub.key, so the key cannot tell them apart): part
   * of its client id on an external MQTT broker, where one id is one session.
   */
  instance: 'hub.id',
} as const;

/** What `hub.json` holds: where the local CLI reaches the API. */
export interface HubInfo {
  url: string;
  fleet: string;
  /** Present when the hub runs an embedded broker or knows its bus. */
  bus?: { type: string; url: string };
  pid?: number;
}

export const ADMIN_TOKEN_PREFIX = 'rpa1.';
export const METRICS_TOKEN_PREFIX = 'rpm1.';
export const VIEWER_TOKEN_PREFIX = 'rpv1.';

const PREFIX_BY_FILE: Record<string, string> = {
  [HUB_FILES.metricsToken]: METRICS_TOKEN_PREFIX,
  [HUB_FILES.viewerToken]: VIEWER_TOKEN_PREFIX,
};

export function hubDir(dataDir: string): string {
  return join(dataDir, 'hub');
}

/** Creates `DATA/hub` (0700) and loads or creates the hub key and the admin token. */
export function prepareHubDir(dataDir: string): {
  dir: string;
  keys: KeyPair;
  adminToken: string;
  metricsToken: string;
  viewerToken: string;
} {
  const dir = hubDir(dataDir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RampartError(
      'E_CONFIG',
      `cannot create the hub data folder ${dir}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const keys = loadOrCreateKeyPair(dir, HUB_FILES.key);
  return {
    dir,
    keys,
    adminToken: loadOrCreateToken(dir, HUB_FILES.adminToken, 'admin token'),
    metricsToken: loadOrCreateToken(dir, HUB_FILES.metricsToken, 'metrics token'),
    viewerToken: loadOrCreateToken(dir, HUB_FILES.viewerToken, 'viewer token'),
  };
}

const INSTANCE_ID = /^[0-9a-f]{16}$/;

/**
 * Reads `hub.id`, or makes one (8 random bytes as hex) on the first start. Random rather than the
 * host name: hubs cloned from one image, or two in containers, must still differ; and stable, so
 * a restarted hub resumes its broker session. A copied data folder copies it too (docs/config.md
 * says to copy only the key and tokens). Made only for an external MQTT broker, the one user.
 */
export function loadOrCreateInstanceId(dir: string): string {
  const file = join(dir, HUB_FILES.instance);
  // Read first: a restart must not need a byte of free disk.
  if (!existsSync(file))
    writeSecretFile(file, `${randomBytes(8).toString('hex')}\n`, { exclusive: true, what: 'hub id' });
  const id = readSecretFile(file, 'hub id').trim();
  if (!INSTANCE_ID.test(id))
    throw new RampartError(
      'E_CONFIG',
      `${file} does not hold a hub id (16 hex digits); delete it and restart the hub to make a new one`,
    );
  return id;
}

function loadOrCreateToken(dir: string, name: string, what: string): string {
  const file = join(dir, name);
  // Read first: a restart must not need a byte of free disk (a temp file on a full disk is ENOSPC).
  if (existsSync(file)) return readAdminToken(file, what);
  const prefix = PREFIX_BY_FILE[name] ?? ADMIN_TOKEN_PREFIX;
  writeSecretFile(file, `${prefix}${randomBytes(32).toString('base64url')}\n`, { exclusive: true, what });
  return readAdminToken(file, what);
}

/** Reads an admin token file, refusing one that others can read (like ssh does with keys). */
export function readAdminToken(file: string, what = 'admin token'): string {
  const text = readSecretFile(file, what).trim();
  if (!text)
    throw new RampartError('E_AUTH', `${file} is empty; delete it and restart the hub to make a new one`);
  return text;
}

/** Writes hub.json atomically, so a CLI never reads half a file. */
export function writeHubInfo(dir: string, info: HubInfo): void {
  const file = join(dir, HUB_FILES.info);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

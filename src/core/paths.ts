import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Where a hub or agent keeps its state when `--data` is not given: `$RAMPART_DATA`, else
 * /var/lib/rampart for root, else $XDG_DATA_HOME/rampart. The CLI on the hub's machine finds the
 * hub's URL and admin credential here, so `rampart ban 192.0.2.1` works with no flags.
 */
export function defaultDataDir(): string {
  if (process.env.RAMPART_DATA) return process.env.RAMPART_DATA;
  if (process.getuid?.() === 0) return '/var/lib/rampart';
  const xdg = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'rampart');
}

export const DEFAULT_CONFIG_FILE = '/etc/rampart/rampart.yaml';

/**
 * Default ports. Not 1883: a lone machine often runs Mosquitto there already, and the embedded
 * broker must not fight it.
 */
export const DEFAULT_API_PORT = 7780;
export const DEFAULT_BROKER_PORT = 7781;
export const DEFAULT_LISTEN = '127.0.0.1';

import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where `rampart up` reads sshd's failures from on this machine. */
export type LocalLog = { kind: 'file'; path: string } | { kind: 'journald' } | { kind: 'none' };

const AUTH_LOGS = ['/var/log/auth.log', '/var/log/secure'];

/** The local auth log (Debian's auth.log, RHEL's secure), else journald when journalctl exists. */
export function findLocalLog(): LocalLog {
  for (const path of AUTH_LOGS) if (existsSync(path)) return { kind: 'file', path };
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/bin'];
  if (dirs.some((d) => d && existsSync(join(d, 'journalctl')))) return { kind: 'journald' };
  return { kind: 'none' };
}

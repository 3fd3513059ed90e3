import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type CheckResult, fail, ok, warn } from './check.js';

/**
 * Files in DATA that hold a secret or the state a forger would want: private keys, tokens and the
 * SQLite databases (with their WAL). They must be 0600 in 0700 folders (src/trust/keys.ts and
 * secret-file.ts write them so; a copy, a restore or an umask can undo it).
 */
const SECRET = /\.(key|token|db|db-wal|db-shm|sqlite)$/;

export function checkPermissions(dataDir: string): CheckResult[] {
  if (!existsSync(dataDir)) {
    return [
      warn(
        'data folder',
        `${dataDir} does not exist yet`,
        'nothing to check until "rampart up", "rampart hub" or "rampart join" has run (or pass --data)',
      ),
    ];
  }
  const bad: CheckResult[] = [];
  let files = 0;
  let dirs = 0;
  const walk = (dir: string, depth: number) => {
    dirs++;
    const st = lstatSync(dir);
    if ((st.mode & 0o077) !== 0)
      bad.push(
        fail(
          `permissions ${dir}`,
          `folder mode ${mode(st.mode)}: others can look inside`,
          `chmod 700 ${dir}`,
        ),
      );
    if (depth > 3) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (e.isFile() && SECRET.test(e.name)) {
        files++;
        const m = lstatSync(p).mode;
        if ((m & 0o077) !== 0)
          bad.push(
            fail(`permissions ${p}`, `mode ${mode(m)}: group or others can read it`, `chmod 600 ${p}`),
          );
      }
    }
  };
  walk(dataDir, 0);
  return bad.length > 0
    ? bad
    : [ok('permissions', `${dataDir}: ${files} key, token and database files 0600 in ${dirs} folders 0700`)];
}

function mode(m: number): string {
  return (m & 0o777).toString(8).padStart(4, '0');
}

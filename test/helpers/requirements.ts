import { execFileSync } from 'node:child_process';
import { it } from 'vitest';

/** Things a suite may need from the machine. */
export type Need = 'root' | 'netns' | `cmd:${string}` | `tcp:${number}` | `file:${string}`;

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {
      stdio: 'ignore',
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
    });
    return true;
  } catch {
    return false;
  }
}

function tcpOpen(port: number): boolean {
  try {
    execFileSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore', timeout: 3000 });
    return true;
  } catch {
    return false;
  }
}

function missing(need: Need): boolean {
  if (need === 'root') return process.getuid?.() !== 0;
  if (need === 'netns') return process.getuid?.() !== 0 || !commandExists('ip');
  if (need.startsWith('cmd:')) return !commandExists(need.slice(4));
  if (need.startsWith('tcp:')) return !tcpOpen(Number(need.slice(4)));
  if (need.startsWith('file:')) {
    try {
      execFileSync('test', ['-e', need.slice(5)]);
      return false;
    } catch {
      return true;
    }
  }
  return true;
}

/**
 * Checks what a suite needs. When something is missing it prints one visible line and the caller
 * skips (`describe.skipIf(req.skip)`); under RAMPART_REQUIRE_ALL=1 (CI) a missing requirement is
 * instead a failing test, so a skip can never hide a missing install step.
 */
export function requirements(suite: string, needs: Need[]): { skip: boolean; missing: Need[] } {
  const absent = needs.filter(missing);
  if (absent.length === 0) return { skip: false, missing: [] };
  const line = `SKIP ${suite}: needs ${absent.join(', ')}`;
  if (process.env.RAMPART_REQUIRE_ALL === '1') {
    it(`${suite}: requirements are present`, () => {
      throw new Error(`${line} (RAMPART_REQUIRE_ALL=1 makes this a failure)`);
    });
  } else {
    console.warn(line);
  }
  return { skip: true, missing: absent };
}

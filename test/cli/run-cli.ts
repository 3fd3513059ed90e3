import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

export const MAIN = resolve('dist/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with a clean hub environment; never throws on a non-zero exit. */
export function rampart(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; prefix?: string[] } = {},
): Promise<CliResult> {
  const [cmd, ...pre] = opts.prefix ?? [process.execPath];
  const argv = opts.prefix ? [...pre, process.execPath, MAIN, ...args] : [MAIN, ...args];
  return new Promise((done) => {
    execFile(
      cmd!,
      argv,
      {
        timeout: opts.timeoutMs ?? 20_000,
        env: { ...process.env, RAMPART_HUB: '', RAMPART_TOKEN: '', RAMPART_LOG_FORMAT: '', ...opts.env },
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** One error line, no stack trace: what an operator's mistake must produce. */
export function oneLine(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '');
}

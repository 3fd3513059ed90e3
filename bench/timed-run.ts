/** Whole-process runs for benchmarks: GNU time around a command pinned to one core. */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Run {
  seconds: number;
  /** User + system CPU seconds: steadier than wall time on a shared machine. */
  cpuSeconds: number;
  peakRssMB: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command pinned to CPU 0 under GNU time; stdin from a file when given. Output goes to a
 * file, not a pipe: sshg-parser prints a line per attack (630,000 here) and a pipe to this
 * process would add seconds of system time that are not the parser's.
 */
export function timed(dir: string, cmd: string, args: string[], stdinFile?: string): Run {
  const timeFile = join(dir, 'time.out');
  const outFile = join(dir, 'stdout.out');
  const stdin = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
  const stdout = openSync(outFile, 'w');
  try {
    const r = spawnSync(
      '/usr/bin/time',
      ['-f', '%e %M %U %S', '-o', timeFile, 'taskset', '-c', '0', cmd, ...args],
      {
        stdio: [stdin, stdout, 'pipe'],
        maxBuffer: 1 << 30,
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stderr.slice(0, 500)}`);
    const [secs, kb, user, sys] = readFileSync(timeFile, 'utf8')
      .trim()
      .split('\n')
      .pop()!
      .split(' ')
      .map(Number);
    return {
      seconds: secs!,
      cpuSeconds: Number((user! + sys!).toFixed(2)),
      peakRssMB: Math.round(kb! / 1024),
      stdout: readFileSync(outFile, 'utf8'),
      stderr: r.stderr,
    };
  } finally {
    if (typeof stdin === 'number') closeSync(stdin);
    closeSync(stdout);
  }
}

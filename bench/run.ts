/**
 * `npm run bench [-- NAME...]`: runs every benchmark (or the named ones) in sequence and prints one
 * JSON object per line. Each benchmark compares side by side in the same run (a peer tool or the
 * raw kernel), because these machines are shared and absolute times drift.
 *
 * Benchmarks that run a hub in this process measure it as rampart's own processes run: with its
 * Node.js flags (src/cli/node-flags.ts). They can only be given at start, so without them this
 * runner starts itself again with them.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hasNodeFlags, nodeArgs } from '../src/cli/node-flags.js';
import { benchmarks } from './list.js';

if (hasNodeFlags()) await runAll(process.argv.slice(2));
else await again();

async function runAll(wanted: string[]): Promise<void> {
  const emit = (obj: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(obj)}\n`);
  for (const [name, load] of Object.entries(benchmarks)) {
    if (wanted.length > 0 && !wanted.includes(name)) continue;
    try {
      const mod = await load();
      await mod.default(emit);
    } catch (err) {
      emit({ bench: name, error: err instanceof Error ? err.message : String(err) });
      process.exitCode = 1;
    }
  }
}

async function again(): Promise<void> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...nodeArgs(fileURLToPath(import.meta.url), ...process.argv.slice(2))],
    { stdio: 'inherit' },
  );
  // Ctrl-C reaches both (same process group); SIGTERM from a supervisor is passed on.
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  const [code, signal] = (await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])))) as [
    number | null,
    NodeJS.Signals | null,
  ];
  process.exitCode = code ?? (signal ? 1 : 0);
}

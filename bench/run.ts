/**
 * `npm run bench [-- NAME...]`: runs every benchmark (or the named ones) in sequence and prints one
 * JSON object per line. Each benchmark compares side by side in the same run (a peer tool or the
 * raw kernel), because these machines are shared and absolute times drift.
 */
import { benchmarks } from './list.js';

const wanted = process.argv.slice(2);
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

/**
 * Debian's sshd filter.d file loaded through rampart's fail2ban loader and run by rampart's
 * engine, side by side with rampart's built-in sshd rule (same engine) and with fail2ban-regex
 * (same filter file, fail2ban's engine) on the same seeded auth log. Shows what the translation
 * (prefregex folded into every pattern, conditionals expanded, NOFAIL guards) costs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFail2banFilter } from '../src/compat/fail2ban-filter.js';
import { Engine } from '../src/detect/engine.js';
import type { RuleSpec } from '../src/detect/rule.js';
import { loadRulesFile } from '../src/detect/rules-file.js';
import { generateAuthLog } from './gen-auth-log.js';
import type { Emit } from './list.js';

const LINES = Number(process.env.RAMPART_BENCH_LINES ?? 300_000);
const SLICE = Math.min(LINES, 50_000);
const FILTER = '/etc/fail2ban/filter.d/sshd.conf';

function run(rule: RuleSpec, lines: string[]): { seconds: number; bans: number; matched: number } {
  const engine = new Engine([rule], { clock: 'log', ignoreSources: true });
  let bans = 0;
  const t0 = process.hrtime.bigint();
  for (const text of lines) bans += engine.feed({ text, source: 'auth.log' }).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, bans, matched: engine.stats().matched };
}

export default async function (emit: Emit): Promise<void> {
  if (!existsSync(FILTER)) {
    emit({ bench: 'fail2ban-filter', skipped: `${FILTER} missing (apt-get install fail2ban)` });
    return;
  }
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-f2b-'));
  try {
    const log = join(dir, 'auth.log');
    await generateAuthLog(log, { lines: LINES, seed: 42 });
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const loaded = loadFail2banFilter(FILTER, { name: 'sshd' });
    const builtin = loadRulesFile(join(root, 'rules/sshd.yaml'))[0]!;
    // Warm up both (regex compilation and tier-up) on a short prefix, then measure.
    run(loaded, lines.slice(0, 5000));
    run(builtin, lines.slice(0, 5000));
    const a = run(loaded, lines);
    const b = run(builtin, lines);
    const loadedRate = Math.round(LINES / a.seconds);
    const builtinRate = Math.round(LINES / b.seconds);
    emit({
      bench: 'fail2ban-filter',
      tool: 'rampart engine + Debian sshd.conf (loaded)',
      lines: LINES,
      ...a,
      linesPerSecond: loadedRate,
    });
    emit({
      bench: 'fail2ban-filter',
      tool: 'rampart engine + built-in sshd rule',
      lines: LINES,
      ...b,
      linesPerSecond: builtinRate,
    });
    const out: Record<string, unknown> = {
      bench: 'fail2ban-filter',
      summary: true,
      loadedVsBuiltin: Number((loadedRate / builtinRate).toFixed(2)),
    };
    if (existsSync('/usr/bin/fail2ban-regex')) {
      const slice = join(dir, 'slice.log');
      writeFileSync(slice, `${lines.slice(0, SLICE).join('\n')}\n`);
      const t0 = process.hrtime.bigint();
      const r = spawnSync('/usr/bin/fail2ban-regex', [slice, FILTER], {
        encoding: 'utf8',
        maxBuffer: 1 << 28,
      });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const f2bRate = Math.round(SLICE / seconds);
      const matched = /Failregex: (\d+) total/.exec(r.stdout)?.[1];
      emit({
        bench: 'fail2ban-filter',
        tool: 'fail2ban-regex + Debian sshd.conf',
        lines: SLICE,
        seconds,
        matched: Number(matched),
        linesPerSecond: f2bRate,
      });
      out.loadedVsFail2banRegex = Number((loadedRate / f2bRate).toFixed(2));
    }
    emit(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

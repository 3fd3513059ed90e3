/**
 * Detection throughput: `rampart check` (the real CLI process, every built-in rule loaded) over a
 * seeded 1,000,000-line sshd auth log, side by side with sshguard's parser over the same file and
 * fail2ban-regex (Debian's sshd filter) over a 200,000-line slice; then the same length of log
 * from 500,000 distinct attackers, which must run at the same lines/s with memory held by the
 * tracker's byte budget (the CPU ratio is the median of three pairs of runs); then logs shaped
 * to fill the tracker (bench/gen-hostile-shapes.ts), whose peak RSS must stay under the goal
 * too (docs/adr/0065). Every tool is
 * pinned to one core with taskset and timed by GNU time (wall seconds, CPU seconds, peak RSS),
 * start-up included.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { generateAuthLog } from './gen-auth-log.js';
import { generateHostileLog, HOSTILE_SHAPES } from './gen-hostile-shapes.js';
import type { Emit } from './list.js';
import { timed } from './timed-run.js';

const LINES = Number(process.env.RAMPART_BENCH_LINES ?? 1_000_000);
const SLICE = Math.min(LINES, 200_000);
const SSHG_PARSER = '/usr/libexec/sshguard/sshg-parser';
const F2B_FILTER = '/etc/fail2ban/filter.d/sshd.conf';
const MANY_ATTACKERS = 500_000;
const GOAL_RATIO = 2;
const GOAL_RSS_MB = 64;
/** Few-attacker and many-attacker runs side by side for cpuVsFewAttackers (the median). */
const PAIRS = 3;

const perSecond = (lines: number, s: number) => Math.round(lines / Math.max(s, 0.001));

export default async function (emit: Emit): Promise<void> {
  // Compiled to .bench/build/bench/detect.js; the CLI under test is the real build in dist/.
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const cli = join(root, 'dist/cli/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-detect-'));
  try {
    const log = join(dir, 'auth.log');
    await generateAuthLog(log, { lines: LINES, seed: 42 });
    const slice = join(dir, 'auth-slice.log');
    const text = readFileSync(log, 'utf8');
    let cut = 0;
    for (let i = 0; i < SLICE; i++) cut = text.indexOf('\n', cut) + 1;
    writeFileSync(slice, text.slice(0, cut));

    const many = join(dir, 'auth-many.log');
    await generateAuthLog(many, { lines: LINES, seed: 43, attackers: MANY_ATTACKERS });

    const r = timed(dir, process.execPath, [...NODE_FLAGS, cli, 'check', '--json', log]);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
    const rampart = perSecond(LINES, r.seconds);
    emit({
      bench: 'detect',
      tool: 'rampart check (every built-in rule)',
      lines: LINES,
      seconds: r.seconds,
      linesPerSecond: rampart,
      cpuSeconds: r.cpuSeconds,
      linesPerCpuSecond: perSecond(LINES, r.cpuSeconds),
      insideLinesPerSecond: summary.linesPerSecond,
      matched: summary.matched,
      bans: summary.bans,
      peakRssMB: r.peakRssMB,
    });

    let sshguard: number | undefined;
    let sshguardCpu: number | undefined;
    if (existsSync(SSHG_PARSER)) {
      const s = timed(dir, SSHG_PARSER, [], log);
      sshguard = perSecond(LINES, s.seconds);
      sshguardCpu = perSecond(LINES, s.cpuSeconds);
      const attacks = s.stdout.split('\n').filter(Boolean).length;
      emit({
        bench: 'detect',
        tool: 'sshg-parser',
        lines: LINES,
        seconds: s.seconds,
        linesPerSecond: sshguard,
        cpuSeconds: s.cpuSeconds,
        linesPerCpuSecond: sshguardCpu,
        attacks,
        peakRssMB: s.peakRssMB,
      });
    } else {
      emit({
        bench: 'detect',
        tool: 'sshg-parser',
        skipped: `${SSHG_PARSER} not installed (apt-get install sshguard)`,
      });
    }

    let f2b: number | undefined;
    let f2bCpu: number | undefined;
    if (existsSync('/usr/bin/fail2ban-regex') && existsSync(F2B_FILTER)) {
      const f = timed(dir, '/usr/bin/fail2ban-regex', [slice, F2B_FILTER]);
      f2b = perSecond(SLICE, f.seconds);
      f2bCpu = perSecond(SLICE, f.cpuSeconds);
      const matched = /Failregex: (\d+) total/.exec(f.stdout)?.[1];
      emit({
        bench: 'detect',
        tool: 'fail2ban-regex (Debian sshd filter)',
        lines: SLICE,
        seconds: f.seconds,
        linesPerSecond: f2b,
        cpuSeconds: f.cpuSeconds,
        linesPerCpuSecond: f2bCpu,
        matched: matched === undefined ? undefined : Number(matched),
        peakRssMB: f.peakRssMB,
      });
    } else {
      emit({
        bench: 'detect',
        tool: 'fail2ban-regex',
        skipped: 'fail2ban not installed (apt-get install fail2ban)',
      });
    }

    emit({
      bench: 'detect',
      comparison: 'rampart vs peers, lines/s on one core (start-up included)',
      rampartLinesPerSecond: rampart,
      vsSshguard: sshguard ? Number((rampart / sshguard).toFixed(2)) : undefined,
      vsFail2banRegex: f2b ? Number((rampart / f2b).toFixed(2)) : undefined,
      cpuVsSshguard: sshguardCpu
        ? Number((perSecond(LINES, r.cpuSeconds) / sshguardCpu).toFixed(2))
        : undefined,
      cpuVsFail2banRegex: f2bCpu ? Number((perSecond(LINES, r.cpuSeconds) / f2bCpu).toFixed(2)) : undefined,
      goal: `vsSshguard >= ${GOAL_RATIO}`,
      rampartPeakRssMB: r.peakRssMB,
      rssGoalMB: GOAL_RSS_MB,
      rssWithinGoal: r.peakRssMB < GOAL_RSS_MB,
    });

    // Many attackers: the same number of lines from MANY_ATTACKERS addresses. One pair of runs
    // on a shared machine swings by ±0.1 in either direction, so the ratio is the median over
    // PAIRS pairs, each few-attacker run next to its many-attacker one.
    const m = timed(dir, process.execPath, [...NODE_FLAGS, cli, 'check', '--json', many]);
    const ms = JSON.parse(m.stdout.trim().split('\n').pop()!) as Record<string, number>;
    const ratios = [r.cpuSeconds / m.cpuSeconds];
    for (let i = 1; i < PAIRS; i++) {
      const few = timed(dir, process.execPath, [...NODE_FLAGS, cli, 'check', '--json', log]).cpuSeconds;
      ratios.push(
        few / timed(dir, process.execPath, [...NODE_FLAGS, cli, 'check', '--json', many]).cpuSeconds,
      );
    }
    ratios.sort((a, b) => a - b);
    emit({
      bench: 'detect',
      tool: `rampart check, ${MANY_ATTACKERS} distinct attackers`,
      lines: LINES,
      seconds: m.seconds,
      linesPerSecond: perSecond(LINES, m.seconds),
      cpuSeconds: m.cpuSeconds,
      linesPerCpuSecond: perSecond(LINES, m.cpuSeconds),
      matched: ms.matched,
      bans: ms.bans,
      evictions: ms.evictions,
      peakRssMB: m.peakRssMB,
      goal: 'the same lines/s as the 60,000-attacker log; memory held by the resident budget (6.25 MiB)',
      cpuVsFewAttackers: Number(ratios[Math.floor(ratios.length / 2)]!.toFixed(2)),
      cpuVsFewAttackersRuns: ratios.map((x) => Number(x.toFixed(2))),
      cpuVsSshguard: sshguardCpu
        ? Number((perSecond(LINES, m.cpuSeconds) / sshguardCpu).toFixed(2))
        : undefined,
    });

    // Logs not ours: each shape fills the tracker its own way; the goal holds for the worst.
    let worst = { shape: '', peakRssMB: 0 };
    for (const shape of HOSTILE_SHAPES) {
      const path = join(dir, `${shape}.log`);
      // Long lines: a fifth as many (2 KB each), so the file stays near the others' size.
      const n = shape === 'long-lines' ? Math.ceil(LINES / 5) : LINES;
      await generateHostileLog(path, shape, n);
      const h = timed(dir, process.execPath, [...NODE_FLAGS, cli, 'check', '--json', path]);
      const hs = JSON.parse(h.stdout.trim().split('\n').pop()!) as Record<string, number>;
      rmSync(path);
      emit({
        bench: 'detect',
        tool: `rampart check, hostile log: ${shape}`,
        lines: n,
        cpuSeconds: h.cpuSeconds,
        linesPerCpuSecond: perSecond(n, h.cpuSeconds),
        matched: hs.matched,
        evictions: hs.evictions,
        peakRssMB: h.peakRssMB,
        goal: `peak RSS < ${GOAL_RSS_MB} MB, the tracker held to its resident budget (6.25 MiB)`,
      });
      if (h.peakRssMB > worst.peakRssMB) worst = { shape, peakRssMB: h.peakRssMB };
    }
    emit({
      bench: 'detect',
      comparison: 'rampart check peak RSS over every log shape (bench logs and hostile ones)',
      worstShape: m.peakRssMB > worst.peakRssMB ? `${MANY_ATTACKERS} attackers` : worst.shape,
      worstPeakRssMB: Math.max(worst.peakRssMB, m.peakRssMB, r.peakRssMB),
      rssGoalMB: GOAL_RSS_MB,
      rssWithinGoal: Math.max(worst.peakRssMB, m.peakRssMB, r.peakRssMB) < GOAL_RSS_MB,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

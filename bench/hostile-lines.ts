/**
 * Hostile log lines, whole process: the real `rampart check` with every built-in rule plus a user
 * rule that backtracks polynomially (`(.*a){12}<HOST>`, about a second per 16 KiB line without an
 * `a`; then the same behind a literal), over a seeded 200,000-line auth log and over the same log with hostile lines mixed in:
 * one line in a hundred carries NUL bytes, invalid UTF-8, ANSI escapes, a user name reading
 * `x from <victim>`, 16 KiB aimed at the user rule, or more than the 16 KiB line cap; a 10 MB line
 * sits in the middle and another, without a newline, ends the file. Prints lines/s of each, their
 * ratio against the goal, and the bans of the victim address (must be 0). Pinned to one core,
 * timed by GNU time, start-up included.
 */
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../src/cli/node-flags.js';
import { Engine } from '../src/detect/engine.js';
import { generateAuthLog } from './gen-auth-log.js';
import type { Emit } from './list.js';
import { timed } from './timed-run.js';

const LINES = Number(process.env.RAMPART_BENCH_LINES ?? 200_000);
/** One hostile line after every this many normal ones. */
const EVERY = 100;
const VICTIM = '198.51.100.7';
const ATTACKER = '203.0.113.5';
/**
 * The user rule, as the issue names it and anchored on a literal: unanchored, it runs on every
 * line and costs the normal log several times the built-in rules' time, which hides what the
 * hostile lines add; behind `Invalid user ` it runs on a few lines and hides nothing.
 */
const EVIL = ['(.*a){12}<HOST>', 'Invalid user (.*a){12}<HOST>'];
/**
 * Hostile lines are 1 % of the lines but more than half the bytes, and a tenth of them are aimed
 * at a rule that would spend a second on each: keeping half the normal lines/s means the attacker
 * cannot do more than a doubling of the log's own volume would.
 */
const GOAL_RATIO = 0.5;

/** The hostile line of kind `k` (cycled), after a syslog stamp. */
function hostileLine(k: number, stamp: string, i: number): Buffer {
  const head = `${stamp} web1 sshd[${4000 + (i % 1000)}]: `;
  switch (k % 6) {
    case 0:
      return Buffer.from(`${head}Failed password for invalid user ro\0ot\0\0 from ${ATTACKER} port 22 ssh2`);
    case 1:
      return Buffer.concat([
        Buffer.from(`${head}Invalid user `),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]),
        Buffer.from(` from ${ATTACKER} port 22`),
      ]);
    case 2:
      return Buffer.from(`${head}Invalid user \x1b[31m\x1b[2J\x1b]0;owned\x07 from ${ATTACKER} port 22`);
    case 3:
      return Buffer.from(`${head}Invalid user x from ${VICTIM} from ${ATTACKER} port 22`);
    case 4: {
      // Just under the engine's 16 KiB cap, so they are matched: without an `a` the unanchored
      // rule backtracks from every start; `a a a …` makes either rule try every choice of twelve.
      const user = ((i / EVERY / 6) | 0) % 2 === 0 ? 'b'.repeat(16_000) : 'a '.repeat(8_000);
      return Buffer.from(`${head}Invalid user ${user} from ${VICTIM} from ${ATTACKER} port 22`);
    }
    default:
      return Buffer.from(`${head}Invalid user ${'c'.repeat(20_000)} from ${VICTIM} port 22`);
  }
}

/** The normal log with hostile lines mixed in; returns how many lines it holds. */
function writeHostile(normal: string, path: string): { lines: number; aimed: number } {
  const fd = openSync(path, 'w');
  let lines = 0;
  let aimed = 0;
  try {
    const src = readFileSync(normal, 'latin1').split('\n');
    if (src.at(-1) === '') src.pop();
    const ten = `${'x from '.repeat(10)}${VICTIM} `.repeat(Math.ceil((10 << 20) / 85));
    let out: Buffer[] = [];
    for (let i = 0; i < src.length; i++) {
      out.push(Buffer.from(`${src[i]}\n`, 'latin1'));
      lines++;
      if (i % EVERY === EVERY - 1) {
        const k = (i / EVERY) | 0;
        if (k % 6 === 4) aimed++;
        out.push(hostileLine(k, src[i]!.slice(0, 15), i), Buffer.from('\n'));
        lines++;
      }
      if (i === src.length >> 1) {
        out.push(Buffer.from(`${src[i]!.slice(0, 15)} web1 sshd[1]: ${ten}\n`));
        lines++;
      }
      if (out.length > 4096) {
        writeSync(fd, Buffer.concat(out));
        out = [];
      }
    }
    // The writer of the last line never ends it.
    out.push(Buffer.from(`${src.at(-1)!.slice(0, 15)} web1 sshd[1]: ${ten}`));
    lines++;
    writeSync(fd, Buffer.concat(out));
  } finally {
    closeSync(fd);
  }
  return { lines, aimed };
}

interface Summary {
  lines: number;
  matched: number;
  bans: number;
  oversized: number;
  overBudget: number;
  overBudgetSkipped: number;
}

const perSecond = (lines: number, s: number) => Math.round(lines / Math.max(s, 0.001));

/** Seconds the user rule takes per aimed line with the budget off (in process, one of each kind). */
function unguardedSecondsPerLine(pattern: string): number {
  const engine = new Engine(
    [
      {
        name: 'evil',
        sources: [],
        patterns: [pattern],
        ignore: [],
        good: [],
        maxretry: 5,
        findtime: 600,
        bantime: 600,
        ignoreNets: [],
        set: 'blocklist',
      },
    ],
    { clock: 'log', ruleBudget: false },
  );
  let total = 0;
  for (const i of [0, EVERY * 6]) {
    const text = hostileLine(4, 'Nov 21 00:00:00', i).toString('latin1');
    const t0 = performance.now();
    engine.feed({ text, source: 'x' });
    total += (performance.now() - t0) / 1000;
  }
  return total / 2;
}

export default async function (emit: Emit): Promise<void> {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const cli = join(root, 'dist/cli/main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-hostile-'));
  try {
    const normal = join(dir, 'auth.log');
    await generateAuthLog(normal, { lines: LINES, seed: 42 });
    const hostile = join(dir, 'auth-hostile.log');
    const mix = writeHostile(normal, hostile);
    const run = (log: string, rules?: string) => {
      const args =
        rules === undefined
          ? ['check', '--json', log]
          : ['check', '--json', '--builtin', '--rules', rules, log];
      const r = timed(dir, process.execPath, [...NODE_FLAGS, cli, ...args]);
      const out = r.stdout.trim().split('\n');
      const summary = JSON.parse(out.pop()!) as Summary;
      const banned = out
        .map((l) => JSON.parse(l) as { type: string; ip: string })
        .filter((o) => o.type === 'ban');
      return {
        r,
        summary,
        banned,
        warnings: r.stderr.split('\n').filter((l) => l.includes('budget')).length,
      };
    };
    const report = (name: string, x: ReturnType<typeof run>) => {
      emit({
        bench: 'hostile-lines',
        run: name,
        lines: x.summary.lines,
        seconds: x.r.seconds,
        linesPerSecond: perSecond(x.summary.lines, x.r.seconds),
        cpuSeconds: x.r.cpuSeconds,
        linesPerCpuSecond: perSecond(x.summary.lines, x.r.cpuSeconds),
        matched: x.summary.matched,
        bans: x.summary.bans,
        oversized: x.summary.oversized,
        overBudget: x.summary.overBudget,
        overBudgetSkipped: x.summary.overBudgetSkipped,
        budgetWarnings: x.warnings,
        victimsBanned: x.banned.filter((b) => b.ip === VICTIM).length,
        peakRssMB: x.r.peakRssMB,
      });
      return perSecond(x.summary.lines, x.r.seconds);
    };

    report('hostile log, built-in rules only', run(hostile));
    for (const [k, pattern] of EVIL.entries()) {
      const rules = join(dir, `evil-${k}.yaml`);
      // Opted in past the load-time refusal, so the run measures the runtime budget.
      writeFileSync(
        rules,
        `rules:\n  - name: evil\n    allowSlowPatterns: true\n    patterns: ['${pattern}']\n`,
      );
      const a = run(normal, rules);
      const normalRate = report(`normal log, built-in rules + ${pattern}`, a);
      const b = run(hostile, rules);
      const hostileRate = report(`hostile log, built-in rules + ${pattern}`, b);
      const normalBans = new Set(a.banned.map((x) => x.ip));
      const hostileBans = new Set(b.banned.map((x) => x.ip));
      const perLine = unguardedSecondsPerLine(pattern);
      const ratio = Number((hostileRate / normalRate).toFixed(2));
      emit({
        bench: 'hostile-lines',
        comparison: `lines/s with hostile lines mixed in vs the normal log, user rule ${pattern} (whole process, one core)`,
        normalLinesPerSecond: normalRate,
        hostileLinesPerSecond: hostileRate,
        ratio,
        cpuRatio: Number(
          (perSecond(b.summary.lines, b.r.cpuSeconds) / perSecond(a.summary.lines, a.r.cpuSeconds)).toFixed(
            2,
          ),
        ),
        goal: `ratio >= ${GOAL_RATIO}, victims banned: 0`,
        withinGoal: ratio >= GOAL_RATIO && !hostileBans.has(VICTIM),
        victimsBanned: hostileBans.has(VICTIM) ? 1 : 0,
        // Every ban of the normal log is still made with the hostile lines in it.
        normalBansMissed: [...normalBans].filter((ip) => !hostileBans.has(ip)).length,
        hostileLines: mix.lines - LINES,
        linesAimedAtUserRule: mix.aimed,
        unguardedSecondsPerAimedLine: Number(perLine.toFixed(3)),
        unguardedEstimateSeconds: Math.round(perLine * mix.aimed),
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

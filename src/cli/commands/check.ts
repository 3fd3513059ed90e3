import { setFlagsFromString } from 'node:v8';
import type { Command } from 'commander';
import { formatDuration } from '../../core/duration.js';
import type { EngineStats } from '../../detect/engine.js';
import type { RuleSpec } from '../../detect/rule.js';
import type { DetectEvent, LogLine } from '../../detect/types.js';
import { action, usageError } from '../exit.js';

export interface CheckOptions {
  rules?: string;
  fail2banFilter?: string;
  rule?: string;
  builtin?: boolean;
  aggressive?: boolean;
  json?: boolean;
  matches?: boolean;
}

export function register(program: Command): void {
  program
    .command('check')
    .description('Replay logs through detection rules and show what would be banned (like fail2ban-regex)')
    .argument('<log...>', 'log files to replay, in order; - reads standard input')
    .option('--rules <file>', 'a native rules YAML file (default: every built-in rule)')
    .option('--fail2ban-filter <file>', 'a fail2ban filter.d file')
    .option('--rule <name>', 'one built-in rule (sshd, postfix-sasl, dovecot, nginx-http-auth, nginx-4xx)')
    .option('--builtin', 'with --rules: every built-in rule too, as an agent runs them next to rules.files')
    .option('--aggressive', "also count patterns of the rules' aggressive mode (failed publickey, scanners)")
    .option('--json', 'one JSON object per line: bans, matches (with --matches), then a summary')
    .option('--matches', 'also print every matched line')
    .addHelpText(
      'after',
      `
Time windows use each line's own timestamp (RFC 3164, RFC 5424/ISO 8601, fail2ban's format), so
an old log replays as it happened. Exit codes: 0 done, 2 bad rule file, filter or arguments.

Examples:
  rampart check /var/log/auth.log
  rampart check --rule sshd --aggressive --json /var/log/auth.log.1 /var/log/auth.log
  journalctl -u ssh -o short-iso | rampart check --rule sshd -`,
    )
    .action(action(checkCommand));
}

/** What `rampart check <log...>` does once its arguments are parsed (by commander or check-args.ts). */
export async function checkCommand(logs: string[], opts: CheckOptions): Promise<void> {
  const chosen = [opts.rules, opts.fail2banFilter, opts.rule].filter((x) => x !== undefined);
  if (chosen.length > 1) throw usageError('use only one of --rules, --fail2ban-filter and --rule');
  if (opts.builtin && opts.rules === undefined) throw usageError('--builtin goes with --rules');
  await runCheck(logs, opts);
}

interface Loaded {
  rules: RuleSpec[];
  /** For a fail2ban filter: cuts dates the engine does not read itself (Apache, nginx error logs). */
  adapt?: (line: LogLine) => LogLine;
}

async function loadRules(opts: CheckOptions): Promise<Loaded> {
  // The built-in rules come from the build's snapshot: no YAML parser or schema library to load.
  const { snapshotBuiltinRule, snapshotBuiltinRules } = await import('../../detect/builtin-snapshot.js');
  const aggressive = { aggressive: opts.aggressive === true };
  if (opts.rules !== undefined) {
    const { loadRulesFile } = await import('../../detect/rules-file.js');
    const own = loadRulesFile(opts.rules, aggressive);
    return { rules: opts.builtin ? [...(await snapshotBuiltinRules(aggressive)), ...own] : own };
  }
  if (opts.rule !== undefined) return { rules: [await snapshotBuiltinRule(opts.rule, aggressive)] };
  if (opts.fail2banFilter !== undefined) {
    const { readFail2banFilter } = await import('../../compat/fail2ban-filter.js');
    const { fail2banLineAdapter } = await import('../../compat/fail2ban-date.js');
    const f = readFail2banFilter(opts.fail2banFilter, opts.aggressive ? { mode: 'aggressive' } : {});
    return { rules: [f.rule], adapt: fail2banLineAdapter(f.datePatterns) };
  }
  return { rules: await snapshotBuiltinRules(aggressive) };
}

async function runCheck(logs: string[], opts: CheckOptions): Promise<void> {
  // A replay allocates per line but keeps almost nothing: V8 would still double its young
  // generation up to 16 MB per semi-space, ≈ 20 MB of peak RSS for no measured CPU gain. The
  // growth factor is read at each resize (unlike --max-semi-space-size, fixed at start), so
  // setting it here keeps the young generation at its initial size (docs/adr/0028).
  setFlagsFromString('--semi-space-growth-factor=1');
  // The hot loop is optimised by TurboFan anyway; Sparkplug's baseline code for the functions on
  // the way is ≈ 0.5 MB of peak RSS and measured no faster (docs/adr/0032).
  setFlagsFromString('--no-sparkplug');
  const { rules, adapt } = await loadRules(opts);
  const { replay } = await import('../../detect/replay.js');
  const out = new BufferedOut();
  const table = new BanTable(out, rules, opts.matches !== true);
  // A fail2ban filter may trigger the same warning for a dozen patterns: say it once with a count.
  const warnings = new Map<string, string[]>();
  const warn = (message: string) => {
    const cut = message.lastIndexOf(': ');
    const what = cut < 0 ? message : message.slice(cut + 2);
    warnings.set(what, [...(warnings.get(what) ?? []), cut < 0 ? '' : message.slice(0, cut)]);
  };
  const result = await replay(logs, rules, {
    adapt,
    pause: () => out.backlog(),
    warning: warn,
    event: (e) => {
      if (e.type !== 'ban') return;
      if (opts.json) {
        out.write(
          JSON.stringify({
            type: 'ban',
            ip: e.target.text,
            rule: e.rule,
            at: new Date(e.at).toISOString(),
            hits: e.hits,
            duration: e.duration,
          }),
        );
      } else {
        table.add(e);
      }
    },
    match: opts.matches
      ? (m) => {
          if (opts.json)
            out.write(JSON.stringify({ type: 'match', line: m.line, ip: m.ip, rule: m.rule, file: m.file }));
          else out.write(`match  ${m.file}:${m.line}  ${m.rule}  ${m.ip}`);
        }
      : undefined,
  });
  for (const [what, where] of warnings) {
    const at = where.length === 1 ? where[0] : `${where[0]} and ${where.length - 1} more`;
    process.stderr.write(`rampart: warning: ${at ? `${at}: ` : ''}${what}\n`);
  }
  const { stats, seconds } = result;
  const linesPerSecond = seconds > 0 ? Math.round(stats.lines / seconds) : stats.lines;
  if (opts.json) {
    out.write(
      JSON.stringify({
        type: 'summary',
        lines: stats.lines,
        matched: stats.matched,
        bans: stats.bans,
        seconds: Number(seconds.toFixed(3)),
        linesPerSecond,
        ignored: stats.ignored,
        skipped: stats.skipped,
        good: stats.good,
        unbans: stats.unbans,
        oversized: stats.oversized,
        evictions: stats.evictions,
        overBudget: stats.overBudget,
        overBudgetSkipped: stats.overBudgetSkipped,
      }),
    );
  } else {
    table.end(stats, seconds, linesPerSecond);
  }
  await out.end();
}

/** Bans held to size the table's columns; past this many the rest are printed as they come. */
const TABLE_SIZING_ROWS = 1_000;

/**
 * The readable output: the rules, a table of bans, the totals. Columns are as wide as their widest
 * cell among the first {@link TABLE_SIZING_ROWS} bans; a log banning more prints the rest as they
 * come (a wider cell just shifts its own line), so memory stays flat: keeping every ban to size
 * the columns took 163 MB for a log banning 200,000 addresses. With --matches every ban waits for
 * the end, after the match lines, as before.
 */
class BanTable {
  private rows: string[][] = [];
  private widths: number[] | undefined;

  constructor(
    private readonly out: BufferedOut,
    private readonly rules: RuleSpec[],
    private readonly stream: boolean,
  ) {}

  add(e: DetectEvent): void {
    const row = [
      new Date(e.at).toISOString(),
      e.rule,
      e.target.text,
      String(e.hits),
      formatDuration(e.duration),
    ];
    if (this.widths) this.line(row);
    else {
      this.rows.push(row);
      if (this.stream && this.rows.length >= TABLE_SIZING_ROWS) this.start();
    }
  }

  end(stats: EngineStats, seconds: number, linesPerSecond: number): void {
    const out = this.out;
    if (!this.widths && this.rows.length === 0) {
      out.write(`Rules: ${this.rules.map((r) => r.name).join(', ')}`);
      out.write('');
      out.write('No bans.');
    } else if (!this.widths) this.start();
    out.write('');
    out.write(
      `Lines: ${stats.lines}, matched: ${stats.matched}, bans: ${stats.bans}, ignored: ${stats.ignored}, ` +
        `allowlisted/unbannable: ${stats.skipped}, good: ${stats.good}, oversized: ${stats.oversized}` +
        (stats.overBudget + stats.overBudgetSkipped > 0
          ? `, over time budget: ${stats.overBudget} stopped, ${stats.overBudgetSkipped} long lines skipped`
          : ''),
    );
    out.write(`Time: ${seconds.toFixed(3)} s (${linesPerSecond} lines/s)`);
  }

  /** The rules line and the header, sized by the rows held so far, then those rows. */
  private start(): void {
    const head = ['TIME', 'RULE', 'ADDRESS', 'HITS', 'BAN'];
    this.widths = head.map((h, i) => this.rows.reduce((w, r) => Math.max(w, r[i]!.length), h.length));
    this.out.write(`Rules: ${this.rules.map((r) => r.name).join(', ')}`);
    this.out.write('');
    this.line(head);
    for (const r of this.rows) this.line(r);
    this.rows = [];
  }

  private line(r: string[]): void {
    this.out.write(
      r
        .map((c, i) => c.padEnd(this.widths![i]!))
        .join('  ')
        .trimEnd(),
    );
  }
}

/**
 * Batches output lines into large writes; a replay may print a million match lines. Lines are
 * copied into bytes at once rather than kept as strings until the write: strings held across a
 * few young-generation collections are promoted, and a log that bans most of its addresses then
 * grew the old generation by ≈ 15 MB of such garbage between full collections (docs/adr/0065).
 */
class BufferedOut {
  private bytes = Buffer.allocUnsafe(1 << 16);
  private used = 0;

  write(line: string): void {
    // At most 3 bytes a UTF-16 unit, and the newline.
    if (this.used + line.length * 3 + 1 > this.bytes.length) {
      this.flush();
      if (line.length * 3 + 1 > this.bytes.length) {
        process.stdout.write(`${line}\n`);
        return;
      }
    }
    this.used += this.bytes.write(line, this.used);
    this.bytes[this.used++] = 10;
  }

  private flush(): void {
    if (this.used === 0) return;
    process.stdout.write(this.bytes.subarray(0, this.used));
    // Written at once (a file or /dev/null: node writes them synchronously; a pipe the reader
    // keeps up with), the buffer is free again: no 64 KB copy per write left for the garbage
    // collector (a million bans made ≈ 20 MB of them between collections). Queued (a slow pipe or
    // socket), the stream holds it: the next lines go to a new one.
    if (process.stdout.writableLength > 0) this.bytes = Buffer.allocUnsafe(this.bytes.length);
    this.used = 0;
  }

  /**
   * While a write is queued (a pipe the reader has not emptied), a promise settled once it is
   * written: the replay waits, so the output never piles up in memory.
   */
  backlog(): Promise<void> | undefined {
    if (!process.stdout.writableNeedDrain) return undefined;
    return new Promise((r) => process.stdout.once('drain', () => r()));
  }

  async end(): Promise<void> {
    this.flush();
    if (process.stdout.writableNeedDrain) await new Promise((r) => process.stdout.once('drain', r));
  }
}

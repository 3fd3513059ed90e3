import { DEFAULT_MAX_LINE, Engine, type EngineStats } from './engine.js';
import { forEachLineIn } from './read-lines.js';
import type { RuleSpec } from './rule.js';
import type { DetectEvent, LogLine } from './types.js';

/**
 * What a replay's tracker may have in use (Engine `maxResidentBytes`): issue 11 holds the whole
 * `rampart check` process under 64 MB of peak RSS whatever the log. Node and the checked rules
 * take ≈ 51 MB before the first line, reading and matching up to ≈ 5 MB more; 6.25 MiB is what is
 * left under 62 MiB, and holds the 500,000-attacker bench log's pairs (6.23 MiB) without eviction
 * (docs/adr/0065).
 */
export const CHECK_RESIDENT_BYTES = 6.25 * 1024 * 1024;

export interface ReplayMatch {
  file: string;
  line: number;
  rule: string;
  ip: string;
}

export interface ReplayResult {
  stats: EngineStats;
  seconds: number;
}

/**
 * Replays log files (`-` = stdin) through the rules in log-time mode, as `rampart check` does.
 * Every rule reads every file: the operator chose them for these logs.
 */
export async function replay(
  files: string[],
  rules: RuleSpec[],
  on: {
    event?: (e: DetectEvent) => void;
    match?: (m: ReplayMatch) => void;
    warning?: (message: string) => void;
    /**
     * Rewrites each line before the engine sees it, e.g. `fail2banLineAdapter` cutting an Apache
     * or nginx error-log date out as fail2ban does. It may return the line it was given.
     */
    adapt?: (line: LogLine) => LogLine;
    /** Between reads: a promise holds the replay until it settles (see forEachLineIn). */
    pause?: () => Promise<void> | undefined;
  },
): Promise<ReplayResult> {
  let file = '';
  let lineNo = 0;
  const engine = new Engine(rules, {
    clock: 'log',
    ignoreSources: true,
    maxResidentBytes: CHECK_RESIDENT_BYTES,
    onWarning: on.warning,
    onMatch: on.match
      ? (m) => {
          if (m.kind === 'fail') on.match!({ file, line: lineNo, rule: m.rule, ip: m.ip });
        }
      : undefined,
  });
  const adapt = on.adapt;
  const started = performance.now();
  let source = '';
  // Lines no rule could act on are counted but never decoded. Not when lines are rewritten first:
  // the literal test is on the bytes as read.
  const literals = adapt === undefined && engine.prefilterLiterals();
  const filter = literals
    ? {
        literals,
        deliverOver: DEFAULT_MAX_LINE,
        onSkip: () => {
          lineNo++;
          engine.skipLine();
        },
      }
    : undefined;
  for (const f of files) {
    file = f;
    lineNo = 0;
    source = f === '-' ? 'stdin' : f;
    await forEachLineIn(
      f,
      (chunk, start, end, literals) => {
        lineNo++;
        const events =
          adapt === undefined
            ? engine.feedIn(chunk, start, end, source, literals)
            : engine.feed(adapt({ text: chunk.slice(start, end), source }));
        if (events.length > 0 && on.event) for (const e of events) on.event(e);
      },
      filter,
      on.pause,
    );
  }
  return { stats: engine.stats(), seconds: (performance.now() - started) / 1000 };
}

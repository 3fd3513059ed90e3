import { logSettings } from '../../core/log-settings.js';
import { action } from '../exit.js';
import { type CheckOptions, checkCommand } from './check.js';

/**
 * `rampart check` without commander. Loading commander costs a one-shot replay ≈ 3 MB of its
 * resident memory (commander loads node:child_process, which loads the networking modules) and
 * tens of milliseconds, and `rampart check` is measured whole process against sshguard's parser
 * (issue 11, docs/adr/0032). Only plain command lines are read here: the options below, each
 * spelled out, valued ones at most once and followed by a value that does not start with `-`,
 * and at least one log. Anything else (help, `--opt=value`, `--`, log options, an unknown or
 * misplaced flag, no log) returns null and goes to commander, which gives its usual help and
 * errors. A test checks that commander reads every accepted line the same way.
 */
const FLAGS = new Map<string, 'json' | 'matches' | 'builtin' | 'aggressive'>([
  ['--json', 'json'],
  ['--matches', 'matches'],
  ['--builtin', 'builtin'],
  ['--aggressive', 'aggressive'],
]);
const VALUED = new Map<string, 'rules' | 'fail2banFilter' | 'rule'>([
  ['--rules', 'rules'],
  ['--fail2ban-filter', 'fail2banFilter'],
  ['--rule', 'rule'],
]);

/** The logs and options of a plain `check` command line (the words after `check`), else null. */
export function plainCheckArgs(args: readonly string[]): { logs: string[]; opts: CheckOptions } | null {
  const logs: string[] = [];
  const opts: CheckOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-' || !a.startsWith('-')) {
      logs.push(a);
      continue;
    }
    const flag = FLAGS.get(a);
    if (flag !== undefined) {
      opts[flag] = true;
      continue;
    }
    const valued = VALUED.get(a);
    const value = args[i + 1];
    if (valued === undefined || opts[valued] !== undefined || value === undefined || value.startsWith('-'))
      return null;
    opts[valued] = value;
    i++;
  }
  return logs.length === 0 ? null : { logs, opts };
}

/**
 * Runs `rampart check` when its command line is plain (see above), with the checks and error
 * handling of the commander path; false when commander must read it.
 */
export async function runPlainCheck(args: readonly string[]): Promise<boolean> {
  const plain = plainCheckArgs(args);
  if (plain === null) return false;
  await action(async () => {
    // What the commander path's preAction hook checks (the environment's log settings).
    logSettings();
    await checkCommand(plain.logs, plain.opts);
  })();
  return true;
}

import v8 from 'node:v8';
import { RampartError } from '../core/errors.js';

// Once per process, before any user pattern is compiled: when a backtracking match exceeds V8's
// budget it is re-run on the linear-time engine instead of hanging the agent, and the `l` flag
// becomes available so we can ask V8 whether a pattern is linear-time at all.
v8.setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
v8.setFlagsFromString('--enable-experimental-regexp-engine');

/**
 * How strictly user patterns must be linear-time. `require`: anything V8's linear engine cannot
 * run (back-references, lookarounds) is refused. `prefer` (default): lookarounds are accepted
 * (fail2ban's own filters use them) with a warning, back-references are still refused because
 * nothing can rescue a back-reference that backtracks exponentially.
 */
export type LinearMode = 'require' | 'prefer';

let linearFlagWorks: boolean | undefined;

/** True when this V8 accepts the `l` (linear) flag. */
export function linearFlagAvailable(): boolean {
  if (linearFlagWorks === undefined) {
    try {
      // A literal /a/l would be a syntax error where the flag is missing: build it at run time.
      // biome-ignore lint/complexity/useRegexLiterals: the `l` flag exists only behind a V8 flag
      new RegExp('a', 'l');
      linearFlagWorks = true;
    } catch {
      linearFlagWorks = false;
    }
  }
  return linearFlagWorks;
}

/** Whether V8 can run this pattern in linear time (no back-references, no lookarounds). */
export function isLinear(source: string, flags = ''): boolean {
  if (!linearFlagAvailable()) return !hasBackReference(source);
  try {
    new RegExp(source, `${flags}l`);
    return true;
  } catch {
    return false;
  }
}

/** A `\1`..`\9` or `\k<name>` outside a character class. */
export function hasBackReference(source: string): boolean {
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      const n = source[i + 1];
      if (!inClass && n !== undefined && ((n >= '1' && n <= '9') || (n === 'k' && source[i + 2] === '<')))
        return true;
      i++;
    } else if (c === '[') {
      inClass = true;
    } else if (c === ']') {
      inClass = false;
    }
  }
  return false;
}

/**
 * Compiles a user pattern safely. The pattern itself runs on the fast backtracking engine (the
 * linear engine is several times slower on ordinary lines); the process-wide fallback flag above
 * switches a runaway match to the linear engine, which only works for linear-compatible patterns,
 * hence the check.
 */
export function compileUserRegex(
  source: string,
  where: string,
  opts: {
    flags?: string;
    linear?: LinearMode;
    onWarning?: (message: string) => void;
    /** The pattern as the user wrote it (before placeholders were expanded), for messages. */
    shown?: string;
  } = {},
): RegExp {
  const flags = opts.flags ?? '';
  const shown = opts.shown ?? source;
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (err) {
    throw new RampartError(
      'E_REGEX',
      // V8 repeats the whole (expanded) regex in its message; keep only the reason.
      `${where}: invalid pattern /${clip(shown)}/: ${(err as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '')}`,
      {
        cause: err,
      },
    );
  }
  if (!isLinear(source, flags)) {
    if (opts.linear === 'require' || hasBackReference(source)) {
      throw new RampartError(
        'E_REGEX',
        `${where}: pattern /${clip(shown)}/ cannot run in linear time (back-references${opts.linear === 'require' ? ' or lookarounds' : ''} are not allowed)`,
      );
    }
    opts.onWarning?.(
      `${where}: pattern uses lookarounds, so it is not protected against runaway backtracking`,
    );
  }
  return re;
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

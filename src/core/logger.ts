import { isatty } from 'node:tty';
import { jsonMembers, jsonString } from './log-json.js';
import { type LogFormat, logSettings } from './log-settings.js';
import { textDestination } from './log-text.js';
import { writeAll } from './log-write.js';

export { LOG_FORMATS, LOG_LEVELS, type LogFormat, logSettings } from './log-settings.js';

/** `log.info('message')` or `log.info({ field: value }, 'message')`; an Error alone goes in `err`. */
export interface LogFn {
  (msg: string): void;
  (fields: object, msg?: string): void;
}

/**
 * What rampart's code logs through. The lines are the JSON pino wrote before (ADR 0064): `level`
 * (pino's numbers, 10 trace … 60 fatal), `time` (ms since the epoch), `name`, the fields, `msg`.
 */
export interface Logger {
  /** fatal, error, warn, info, debug, trace or silent; setting it takes effect at once. */
  level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger writing the same place with these fields on every line. */
  child(bindings: object): Logger;
  isLevelEnabled(level: string): boolean;
}

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const METHODS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

const noop: LogFn = () => {};

/**
 * Our own logger rather than pino: an idle agent keeps every module it loaded resident, and pino
 * with its destination was ≈ 1.3 MB of it (ADR 0060, ADR 0064). Methods below the level are a
 * shared no-op, so a `debug` on the ban path costs a call.
 */
class JsonLogger implements Logger {
  declare trace: LogFn;
  declare debug: LogFn;
  declare info: LogFn;
  declare warn: LogFn;
  declare error: LogFn;
  declare fatal: LogFn;
  #level = 'info';

  constructor(
    private readonly out: (line: string) => void,
    /** `,"name":…` and the bindings, already JSON. */
    private readonly prefix: string,
    level: string,
  ) {
    this.level = level;
  }

  get level(): string {
    return this.#level;
  }

  set level(level: string) {
    const threshold = level === 'silent' ? Number.POSITIVE_INFINITY : LEVELS[level];
    if (threshold === undefined) throw new Error(`unknown log level "${String(level).slice(0, 32)}"`);
    this.#level = level;
    for (const m of METHODS) {
      const n = LEVELS[m]!;
      this[m] = n >= threshold ? (a: unknown, msg?: unknown) => this.write(n, a, msg) : noop;
    }
  }

  isLevelEnabled(level: string): boolean {
    const n = LEVELS[level];
    return n !== undefined && this[level as (typeof METHODS)[number]] !== noop;
  }

  child(bindings: object): Logger {
    return new JsonLogger(this.out, this.prefix + jsonMembers(bindings), this.#level);
  }

  private write(level: number, a: unknown, msg: unknown): void {
    let fields = '';
    let text = msg;
    if (a instanceof Error) {
      fields = jsonMembers({ err: a });
      text = msg ?? a.message;
    } else if (a !== null && typeof a === 'object') {
      fields = jsonMembers(a);
    } else {
      text = a;
    }
    const m = text === undefined ? '' : `,"msg":${jsonString(text)}`;
    this.out(`{"level":${level},"time":${Date.now()}${this.prefix}${fields}${m}}\n`);
  }
}

/**
 * Daemons log to stdout; one-shot commands log to stderr so that their stdout (tables, `--json`
 * lines) stays clean for scripts. JSON for journald and log shippers, text for a person when the
 * stream is a terminal. Attacker-controlled text must go in a field (`log.info({ line },
 * 'matched')`), never into the message.
 */
export function createLogger(
  opts: { level?: string; stream?: 'stdout' | 'stderr'; name?: string; format?: LogFormat } = {},
): Logger {
  const settings = logSettings();
  const level = opts.level ?? settings.level;
  const fd = opts.stream === 'stdout' ? 1 : 2;
  const format = opts.format ?? settings.format ?? (isatty(fd) ? 'text' : 'json');
  const text = format === 'text' ? textDestination(fd) : undefined;
  const out = text ? (line: string) => text.write(line) : (line: string) => writeAll(fd, line);
  return new JsonLogger(out, `,"name":${jsonString(opts.name ?? 'rampart')}`, level);
}

/** A logger that drops everything, for library users and tests that do not care. */
export function silentLogger(): Logger {
  return new JsonLogger(noop, '', 'silent');
}

/** A logger handing each JSON line to `out`, for tests that read what was logged. */
export function lineLogger(out: (line: string) => void, level = 'info', name = 'rampart'): Logger {
  return new JsonLogger(out, `,"name":${jsonString(name)}`, level);
}

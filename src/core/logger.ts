import { isatty } from 'node:tty';
import pino, { type Logger } from 'pino';
import { RampartError } from './errors.js';
import { textDestination } from './log-text.js';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The log level and format from `--log-level`/`--log-format` (which set the environment) or
 * RAMPART_LOG_LEVEL/RAMPART_LOG_FORMAT. A wrong value is one usage error naming where it came
 * from, checked before anything starts, rather than pino's stack trace from deep inside a daemon.
 */
export function logSettings(env: NodeJS.ProcessEnv = process.env): { level: string; format?: LogFormat } {
  const level = env.RAMPART_LOG_LEVEL || 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new RampartError(
      'E_USAGE',
      `RAMPART_LOG_LEVEL / --log-level: "${level.slice(0, 32)}" is not a log level (${LOG_LEVELS.join(', ')})`,
    );
  }
  const format = env.RAMPART_LOG_FORMAT || undefined;
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new RampartError(
      'E_USAGE',
      `RAMPART_LOG_FORMAT / --log-format: "${format.slice(0, 32)}" is not json or text`,
    );
  }
  return { level, format: format as LogFormat | undefined };
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
  const dest = format === 'text' ? textDestination(fd) : pino.destination({ fd, sync: true });
  return pino({ level, name: opts.name ?? 'rampart', base: undefined }, dest);
}

/** A logger that drops everything, for library users and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

import { RampartError } from './errors.js';

// Apart from logger.ts so that checking the flags does not load the logger (with pino, before
// ADR 0064, that was ≈ 8 MB of a one-shot command's resident memory, `rampart check` among them).

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * The log level and format from `--log-level`/`--log-format` (which set the environment) or
 * RAMPART_LOG_LEVEL/RAMPART_LOG_FORMAT. A wrong value is one usage error naming where it came
 * from, checked before anything starts, rather than a stack trace from deep inside a daemon.
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

import { createRequire } from 'node:module';
import { isatty } from 'node:tty';
import type { Logger } from 'pino';
import { type LogFormat, logSettings } from './log-settings.js';
import { textDestination } from './log-text.js';

export type { Logger };

/**
 * CommonJS packages on a long-running process's path are loaded with `require`: an `import` of one
 * makes node load its CommonJS export lexer and parse the package's files with it, ≈ 0.9 MB of
 * resident memory an idle agent keeps, and start-up CPU (ADR 0056).
 */
const pino = createRequire(import.meta.url)('pino') as typeof import('pino').default;

export { LOG_FORMATS, LOG_LEVELS, type LogFormat, logSettings } from './log-settings.js';

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

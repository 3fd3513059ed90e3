import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Daemons log JSON to stdout; one-shot commands log to stderr so that their stdout (tables,
 * `--json` lines) stays clean for scripts. Attacker-controlled text must go in a field
 * (`log.info({ line }, 'matched')`), never into the message.
 */
export function createLogger(
  opts: { level?: string; stream?: 'stdout' | 'stderr'; name?: string } = {},
): Logger {
  const level = opts.level ?? process.env.RAMPART_LOG_LEVEL ?? 'info';
  const fd = opts.stream === 'stdout' ? 1 : 2;
  return pino({ level, name: opts.name ?? 'rampart', base: undefined }, pino.destination({ fd, sync: true }));
}

/** A logger that drops everything, for library users and tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

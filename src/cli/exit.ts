import { ConfigError, RampartError } from '../core/errors.js';

/** Exit codes scripts can rely on. */
export const EXIT = {
  OK: 0,
  /** The command ran and failed (a firewall refused a batch, the hub is unreachable). */
  FAILURE: 1,
  /** The operator's input is wrong (arguments, config, rule file): fix it and run again. */
  USAGE: 2,
} as const;

const USAGE_CODES = new Set([
  'E_CONFIG',
  'E_USAGE',
  'E_ADDRESS',
  'E_DURATION',
  'E_REGEX',
  'E_UNBANNABLE',
  'E_SET_NAME',
  'E_PROTECTED',
]);

/**
 * Wraps a command action so that an expected error becomes one line on stderr and a stable exit
 * code, never a stack trace. Unexpected errors still show their stack (with RAMPART_DEBUG=1 for
 * expected ones too), because those are our bugs.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

export function reportError(err: unknown): number {
  if (err instanceof RampartError) {
    process.stderr.write(`rampart: ${err.message}\n`);
    if (process.env.RAMPART_DEBUG === '1' && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof ConfigError || USAGE_CODES.has(err.code) ? EXIT.USAGE : EXIT.FAILURE;
  }
  process.stderr.write(
    `rampart: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return EXIT.FAILURE;
}

export function usageError(message: string): RampartError {
  return new RampartError('E_USAGE', message);
}

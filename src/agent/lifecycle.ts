/**
 * One root AbortController for a daemon, aborted by the first SIGINT or SIGTERM; a second signal
 * exits at once (an operator pressing Ctrl-C twice means it).
 */
export function rootAbort(onSecond: () => void = () => process.exit(130)): AbortController {
  const ac = new AbortController();
  const handler = () => {
    if (ac.signal.aborted) onSecond();
    else ac.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  ac.signal.addEventListener('abort', () => {
    // Keep listening for the second signal, but let the process exit once work is done.
  });
  return ac;
}

/** Resolves when the signal aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((r) => signal.addEventListener('abort', () => r(), { once: true }));
}

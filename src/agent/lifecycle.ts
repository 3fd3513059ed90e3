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
  return ac;
}

/**
 * Resolves when the signal aborts, keeping the process alive until then: a daemon whose hub and
 * bus are both down may have nothing else holding the event loop, and must not exit.
 */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  const keepAlive = setInterval(() => {}, 1 << 30);
  return new Promise((r) =>
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        r();
      },
      { once: true },
    ),
  );
}

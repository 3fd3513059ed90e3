/** Where a progress bar is drawn: a stream that may be a terminal. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** `done` items of the total are finished. */
  update(done: number): void;
  /** Draws the final state and ends the line. */
  finish(): void;
}

const NONE: Progress = { update() {}, finish() {} };

/**
 * A one-line bar with the rate and the time left, for long imports and exports — only when the
 * stream is a terminal: a pipe or a log file gets nothing, so scripts never parse carriage returns.
 * Redrawn at most every 100 ms, so a million updates cost nothing.
 */
export function progressBar(
  label: string,
  total: number,
  opts: { stream?: ProgressStream; now?: () => number; minTotal?: number } = {},
): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!stream.isTTY || total < (opts.minTotal ?? 1)) return NONE;
  const now = opts.now ?? Date.now;
  const start = now();
  let last = 0;
  let done = 0;
  const draw = () => {
    const seconds = Math.max((now() - start) / 1000, 0.001);
    const rate = done / seconds;
    const left = rate > 0 ? (total - done) / rate : Number.NaN;
    const tail = ` ${String(Math.floor((100 * done) / total)).padStart(3)}% ${done}/${total} ${formatRate(rate)}/s ETA ${formatEta(left)}`;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - tail.length - 4));
    const full = Math.round((width * done) / total);
    stream.write(`\r${label} [${'#'.repeat(full)}${'.'.repeat(width - full)}]${tail}\x1b[K`);
  };
  return {
    update(n: number) {
      done = Math.min(n, total);
      const t = now();
      if (t - last < 100) return;
      last = t;
      draw();
    },
    finish() {
      done = total;
      draw();
      stream.write('\n');
    },
  };
}

function formatRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(0)}k`;
  return r.toFixed(0);
}

function formatEta(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

import { writeAll } from './log-write.js';

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};

/** Characters a value may hold and still be printed bare; anything else is JSON-quoted. */
const BARE = /^[\w.,:/@+%=-]{1,200}$/;

/**
 * The logger writes one JSON object per line; a person at a terminal wants `12:01:02 WARN msg key=value`.
 * Every value goes through JSON.stringify unless it is plainly safe, so a log line carrying an
 * attacker's escape sequences cannot repaint the operator's terminal.
 */
export function formatLogLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, name, pid: _pid, hostname: _host, ...fields } = rec;
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const head = [when, LEVEL_NAMES[level as number] ?? String(level)];
  if (typeof name === 'string') head.push(`${name}:`);
  head.push(typeof msg === 'string' ? quoteIfNeeded(msg, /^[\x20-\x7e]*$/) : '');
  const tail = Object.entries(fields).map(([k, v]) => `${k}=${value(v)}`);
  return `${[...head, ...tail].join(' ').trimEnd()}\n`;
}

function value(v: unknown): string {
  if (typeof v === 'string') return quoteIfNeeded(v, BARE);
  if (v !== null && typeof v === 'object' && 'message' in v && typeof v.message === 'string') {
    return JSON.stringify(v.message); // an error: its message, not a multi-line stack
  }
  return JSON.stringify(v) ?? String(v);
}

function quoteIfNeeded(s: string, safe: RegExp): string {
  return safe.test(s) ? s : JSON.stringify(s);
}

/** A destination that prints each record as text on a file descriptor, synchronously. */
export function textDestination(fd: number): { write(chunk: string): void } {
  return {
    write(chunk: string) {
      let out = '';
      for (const line of chunk.split('\n')) if (line) out += formatLogLine(line);
      writeAll(fd, out);
    },
  };
}

import { describe, expect, it } from 'vitest';
import { formatLogLine } from '../../src/core/log-text.js';

describe('text log lines for a terminal', () => {
  const at = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

  it('prints time, level, name, message and fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: at,
      name: 'rampart-agent',
      msg: 'bus down',
      retry: 5,
      url: 'mqtt://h:1',
    });
    expect(formatLogLine(line)).toBe('03:04:05.678 WARN  rampart-agent: bus down retry=5 url=mqtt://h:1\n');
  });

  it('quotes hostile field values so escape sequences never reach the terminal raw', () => {
    const line = JSON.stringify({
      level: 30,
      time: at,
      msg: 'matched',
      line: 'Failed \u001b[2J for root',
      ip: '192.0.2.1',
    });
    const out = formatLogLine(line);
    expect(out).not.toContain('\u001b');
    expect(out).toContain('line="Failed \\u001b[2J for root"');
    expect(out).toContain('ip=192.0.2.1');
  });

  it('shows an error by its message, and keeps a line that is not JSON as it is', () => {
    const line = JSON.stringify({
      level: 50,
      time: at,
      msg: 'failed',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
    });
    expect(formatLogLine(line)).toBe('03:04:05.678 ERROR failed err="boom"\n');
    expect(formatLogLine('not json')).toBe('not json');
  });
});

import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['10m', 600],
    ['12h', 43200],
    ['1d', 86400],
    ['1w', 604800],
    ['1h30m', 5400],
    ['600', 600],
    ['1.5h', 5400],
    [3600, 3600],
  ])('parses %j as %d seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it('treats permanent (and fail2ban -1) as no expiry', () => {
    expect(parseDuration('permanent')).toBeNull();
    expect(parseDuration('-1')).toBeNull();
    expect(parseDuration(-1)).toBeNull();
  });

  it.each([
    '',
    '10x',
    'h',
    '0',
    '0s',
    '-5m',
    '10m junk',
    'tomorrow',
  ])('rejects %j naming the field', (input) => {
    expect(() => parseDuration(input, 'bantime')).toThrow(/^bantime: .*not a duration|bantime: .*positive/);
  });

  it('formats compactly', () => {
    expect(formatDuration(5400)).toBe('1h30m');
    expect(formatDuration(604800 + 1)).toBe('1w1s');
    expect(formatDuration(null)).toBe('permanent');
  });

  it('refuses durations past the longest exact expiry (about 317 years)', () => {
    expect(parseDuration(10_000_000_000)).toBe(10_000_000_000);
    expect(() => parseDuration(10_000_000_001)).toThrow(/at most/);
    expect(() => parseDuration('99999999999999999999999')).toThrow(/at most/);
    expect(() => parseDuration('400000w')).toThrow(/at most/);
  });
});

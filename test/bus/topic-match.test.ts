import { describe, expect, it } from 'vitest';
import { isValidFilter, topicMatches } from '../../src/bus/topic-match.js';

describe('topic matching', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a', false],
    ['a/#', 'a', true],
    ['a/#', 'a/b/c', true],
    ['#', 'a/b', true],
    ['#', '$SYS/x', false],
    ['+/b', '$SYS/b', false],
    ['rampart/+/reports/+', 'rampart/f/reports/web1', true],
    ['rampart/+/reports/+', 'rampart/f/decisions', false],
    ['a/+/c', 'a//c', true],
  ])('topic matching - %s vs %s is %s', (filter, topic, want) => {
    expect(topicMatches(filter, topic)).toBe(want);
  });

  it('topic matching - invalid filters are recognised', () => {
    expect(isValidFilter('a/#/b')).toBe(false);
    expect(isValidFilter('a/b#')).toBe(false);
    expect(isValidFilter('a/+b')).toBe(false);
    expect(isValidFilter('')).toBe(false);
    expect(isValidFilter('a/+/#')).toBe(true);
  });
});

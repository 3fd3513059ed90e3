import { describe, expect, it } from 'vitest';
import { nestedRepeat } from '../../src/detect/pattern-shape.js';

describe('nestedRepeat - the pattern shapes that backtrack super-linearly', () => {
  it.each([
    ['(a+)+$', '(a+)+'],
    ['^(\\w+\\s?)*$ from <HOST>', '(\\w+\\s?)*'],
    ['(.*a){12}<HOST>', '(.*a){12}'],
    ['^(\\d+)*x from <HOST>$', '(\\d+)*'],
    ['(.+,){3}', '(.+,){3}'],
    ['((.*))+', '((.*))+'],
    ['x(?:y(.*a)?){2,}', '(?:y(.*a)?){2,}'],
  ])('reports %s as %s', (pattern, shape) => {
    expect(nestedRepeat(pattern)).toBe(shape);
  });

  it.each([
    '(?:\\d+\\.){3}\\d+',
    '^(?:\\S+ )?sshd(?:\\[\\d+\\])?: Failed .* from <HOST>$',
    '(a|a)*b',
    '[(.*]{3}',
    '\\(.*\\){3}',
    '(?:.*)?x',
    '{IP_NUMBER} x{',
  ])('accepts %s', (pattern) => {
    expect(nestedRepeat(pattern)).toBeNull();
  });
});

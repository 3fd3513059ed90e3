import { describe, expect, it } from 'vitest';
import { pgArray } from '../../src/store/pg-array.js';
import { admin } from '../helpers/postgres.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('store: PostgreSQL array literals', ['tcp:5432']);

/** What PostgreSQL reads back from the literal, as node-postgres parses the returned array. */
async function roundTrip(values: Array<string | null>, type = 'text'): Promise<unknown[]> {
  const r = await admin(`SELECT $1::${type}[] AS a`, [pgArray(values)]);
  return r.rows[0].a as unknown[];
}

describe.skipIf(req.skip)('pgArray (what PostgreSQL reads back)', () => {
  it('keeps text that needs quoting, the word NULL and the empty string as they were', async () => {
    const hostile = [
      '',
      'NULL',
      'null',
      'Null',
      'a b',
      'a,b',
      '{x}',
      'q"uote',
      'back\\slash',
      '\\"',
      ' lead',
      'trail ',
      'tab\there',
      'new\nline',
      'ünïcode',
      '😀',
      'a"b\\c,d{e}f',
      '2001:db8::1/128',
      '192.0.2.1',
      'sshd@node-1+x',
    ];
    expect(await roundTrip([...hostile, null])).toEqual([...hostile, null]);
  });

  it('agrees with PostgreSQL on random strings of the characters that matter', async () => {
    const chars = ['a', 'Z', '0', ' ', ',', '{', '}', '"', '\\', "'", 'N', 'U', 'L', '\t', 'é', ':', '/'];
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const values = Array.from({ length: 500 }, () =>
      Array.from({ length: rand(8) }, () => chars[rand(chars.length)]).join(''),
    );
    expect(await roundTrip(values)).toEqual(values);
  });

  it('reads back runs of one value, with look-alikes that need quotes between them', async () => {
    // A column repeats its value row after row (the last bare one is remembered).
    const values = ['ban', 'ban', 'NULL', 'ban', 'ban ', 'ban', '', 'ban', 'null', 'x', 'ban'];
    expect(await roundTrip(values)).toEqual(values);
    expect(await roundTrip(['only'])).toEqual(['only']);
    expect(await roundTrip([])).toEqual([]);
    expect(pgArray(['a', 'a', 'b c'])).toBe('{a,a,"b c"}');
  });

  it('writes numbers bare and undefined as NULL', async () => {
    const r = await admin('SELECT $1::bigint[] AS a', [pgArray([1, -2, 1_700_000_000_000, null, undefined])]);
    expect(r.rows[0].a).toEqual(['1', '-2', '1700000000000', null, null]);
  });
});

/** One element of {@link pgArray}: text, a number, or NULL. */
export type PgElement = string | number | bigint | null | undefined;

/**
 * A PostgreSQL array literal (`{a,b,NULL,"x y"}`) for a one-dimensional array of text or numbers,
 * sent as one text parameter and cast by the statement (`$2::text[]`).
 *
 * node-postgres turns a JS array parameter into the same literal, but quotes every element and
 * runs two regular-expression replacements on each: an append of 2,000 decisions passes 21
 * arrays, and that conversion was about a tenth of a hub's CPU per decision on PostgreSQL (ADR
 * 0061). Most elements here (ids, addresses, set names, numbers) need no quotes at all; the ones
 * that do (a reason with spaces or quotes) are quoted and escaped the way PostgreSQL's array input
 * reads them back: backslash before `"` and `\`.
 */
export function pgArray(values: readonly PgElement[]): string {
  const n = values.length;
  if (n === 0) return '{}';
  // Joined once: built with `+=`, every element left two cons strings behind, and node-postgres
  // flattened the chain again to write it (about 1.2 KB of garbage per appended decision).
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else if (typeof v !== 'string') parts[i] = String(v);
    else if (v === lastBare) parts[i] = v;
    else if (BARE.test(v) && !NULL_WORD.test(v)) parts[i] = lastBare = v;
    else parts[i] = `"${v.replace(ESCAPE, '\\$&')}"`;
  }
  parts[0] = `{${parts[0]}`;
  parts[n - 1] = `${parts[n - 1]}}`;
  return parts.join(',');
}

/** The last string that needed no quotes: a column repeats its value (an action, a set name) row after row. */
let lastBare: string | undefined;

/**
 * Elements PostgreSQL's array input reads back unchanged without quotes: no separator, brace,
 * quote, backslash or white space, and not empty.
 */
const BARE = /^[A-Za-z0-9_.:/@+-]+$/;
/** An unquoted NULL (any case) would read back as SQL NULL, not the text. */
const NULL_WORD = /^null$/i;
const ESCAPE = /["\\]/g;

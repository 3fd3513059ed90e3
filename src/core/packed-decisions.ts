import { DECISION_FIELDS, type Decision } from './decision.js';

/**
 * The `decisions-packed` body (docs/protocol.md, ADR 0052): a run of decisions with consecutive
 * seqs written by column. `seq` is the first seq and `n` how many; every other field of
 * {@link Decision} except `id` is one value shared by the whole run, or an array of `n` values
 * (no field of a decision is itself an array, so the two cannot be confused). A bulk import of
 * 500 bans is then 500 addresses and a handful of shared fields, instead of 500 objects that
 * each repeat a dozen names and values: the agents' verify, UTF-8 decode and parse shrink with it.
 *
 * `id` is left out: agents never read it (a decision without one reads as `id: ''`, as before),
 * and the hub's log (`GET /v1/decisions`) still has it.
 */
export const PACKED_DECISIONS = 'decisions-packed';

/** Most decisions one packed body may claim: a few addresses' worth of bytes must not become millions of objects. */
export const MAX_PACKED = 10_000;

/** The columns, in {@link Decision}'s order; `seq` and `n` are the run's own fields, `id` is not sent. */
const COLUMNS = DECISION_FIELDS.filter(
  (f): f is Exclude<(typeof DECISION_FIELDS)[number], 'id' | 'seq'> => f !== 'id' && f !== 'seq',
);

type Column = (typeof COLUMNS)[number];

export type PackedDecisions = { seq: number; n: number } & {
  [K in Column]: Decision[K] | Array<Decision[K]>;
};

/** The run as a packed body, or undefined when its seqs are not consecutive (send it unpacked). */
export function packDecisions(run: readonly Decision[]): PackedDecisions | undefined {
  const first = run[0];
  if (first === undefined) return undefined;
  for (let i = 1; i < run.length; i++) if (run[i]!.seq !== first.seq + i) return undefined;
  const body: Record<string, unknown> = { seq: first.seq, n: run.length };
  for (const c of COLUMNS) body[c] = column(run, c);
  return body as PackedDecisions;
}

/** One value when every decision of the run has it, else all of them in order. */
function column<K extends Column>(run: readonly Decision[], c: K): Decision[K] | Array<Decision[K]> {
  const v = run[0]![c];
  let i = 1;
  while (i < run.length && run[i]![c] === v) i++;
  if (i === run.length) return v;
  const all = new Array<Decision[K]>(run.length);
  for (let j = 0; j < run.length; j++) all[j] = run[j]![c];
  return all;
}

/**
 * The decisions of a packed body, each still to be checked like an unpacked element (the caller's
 * `checkDecision`); undefined when the body is not a packed run at all (no `seq`/`n`, `n` over
 * {@link MAX_PACKED}, or a column that is an array of another length). Trusted input only: call
 * it after the envelope's signature verified.
 */
export function unpackDecisions(body: unknown): Array<Record<string, unknown>> | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const b = body as Record<string, unknown>;
  const { seq, n } = b;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) return undefined;
  if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) > MAX_PACKED) return undefined;
  for (const c of COLUMNS) {
    const v = b[c];
    if (Array.isArray(v) && v.length !== n) return undefined;
  }
  const { action, target, family, duration, expiresAt, reason, rule, origin, createdAt, set } = b;
  const at = (v: unknown, i: number) => (Array.isArray(v) ? v[i] : v);
  const out = new Array<Record<string, unknown>>(n as number);
  for (let i = 0; i < (n as number); i++) {
    // Every field written, in Decision's order: the objects share one shape.
    out[i] = {
      id: '',
      seq: (seq as number) + i,
      action: at(action, i),
      target: at(target, i),
      family: at(family, i),
      duration: at(duration, i),
      expiresAt: at(expiresAt, i),
      reason: at(reason, i),
      rule: at(rule, i),
      origin: at(origin, i),
      createdAt: at(createdAt, i),
      set: at(set, i),
    };
  }
  return out;
}

/** The seqs a packed body claims (unverified: for dropping copies already held, never for acting). */
export function packedSeqs(body: unknown): { first: number; last: number } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { seq, n } = body as { seq?: unknown; n?: unknown };
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(n) || (n as number) < 1) return undefined;
  return { first: seq as number, last: (seq as number) + (n as number) - 1 };
}

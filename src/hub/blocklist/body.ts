import { createHash } from 'node:crypto';
import { parseTarget } from '../../core/address.js';
import type { Decision } from '../../core/decision.js';
import type { Store } from '../../store/types.js';
import { aggregate, type Span } from './aggregate.js';
import type { BlocklistEntry, BlocklistFormat, BlocklistWriter } from './formats.js';

/** What a pull asked for, normalised: two pulls asking the same thing have the same query. */
export interface BlocklistQuery {
  format: BlocklistFormat;
  family?: 4 | 6;
  set?: string;
  aggregate: boolean;
  list: string;
}

const PAGE = 5000;
/** Entries gathered into one piece of the response, so a million bans is not a million writes. */
const CHUNK_BYTES = 64 * 1024;

/**
 * The list's version: the decision log head plus the number of bans in force (with the head
 * fixed, the set only changes by bans expiring, and each expiry lowers the count), plus the query.
 * Neither needs the bans loaded: the head is one row, the count comes from the store's counters.
 */
export async function blocklistVersion(
  store: Store,
  q: BlocklistQuery,
  now: number,
): Promise<{ etag: string; head: number }> {
  const head = await store.head();
  const { total } = await store.countActive(now);
  const query = createHash('sha256').update(JSON.stringify(q)).digest('base64url').slice(0, 12);
  // Weak: a MikroTik script's timeouts count down between two pulls of the same list.
  return { etag: `W/"${head}-${total}-${query}"`, head };
}

/** True when an If-None-Match header names `etag` (weak comparison, `*` or a list). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v.replace(/^W\//, '') === bare;
  });
}

/**
 * The list as text pieces of about 64 KiB, read from the store a page at a time, so a million
 * bans stream out without being held in memory (aggregation must see every range first: it
 * holds them, as compact ranges, before writing).
 */
export async function* blocklistBody(
  store: Store,
  q: BlocklistQuery,
  writer: BlocklistWriter,
  now: number,
): AsyncGenerator<string> {
  let chunk = writer.head();
  const flush = () => {
    const out = chunk;
    chunk = '';
    return out;
  };
  if (q.aggregate) {
    const spans: Span[] = [];
    for await (const d of activeBans(store, q, now))
      spans.push({ target: parseTarget(d.target), expiresAt: d.expiresAt });
    for (const m of aggregate(spans)) {
      chunk += writer.entry({ target: m.target.text, family: m.target.family, expiresAt: m.expiresAt });
      if (chunk.length >= CHUNK_BYTES) yield flush();
    }
  } else {
    // Rows come in target order, so one target banned in several sets arrives in a row: it is
    // one router entry, kept until the latest of its expiries.
    let pending: BlocklistEntry | undefined;
    for await (const d of activeBans(store, q, now)) {
      if (writer.oneEntryPerTarget && pending?.target === d.target) {
        pending.expiresAt = later(pending.expiresAt, d.expiresAt);
        continue;
      }
      if (pending) chunk += writer.entry(pending);
      pending = entryOf(d);
      if (chunk.length >= CHUNK_BYTES) yield flush();
    }
    if (pending) chunk += writer.entry(pending);
  }
  chunk += writer.tail();
  yield flush();
}

async function* activeBans(store: Store, q: BlocklistQuery, now: number): AsyncGenerator<Decision> {
  let after: { target: string; set: string } | undefined;
  for (;;) {
    const page = await store.activeOrdered({ limit: PAGE, after, family: q.family, set: q.set }, now);
    yield* page;
    if (page.length < PAGE) return;
    const last = page[page.length - 1]!;
    after = { target: last.target, set: last.set };
  }
}

function entryOf(d: Decision): BlocklistEntry {
  return {
    target: d.target,
    family: d.family,
    expiresAt: d.expiresAt,
    set: d.set,
    origin: d.origin,
    rule: d.rule,
    reason: d.reason,
  };
}

function later(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : Math.max(a, b);
}

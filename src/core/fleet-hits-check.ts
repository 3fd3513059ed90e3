import { z } from 'zod';
import { type Target, tryParseTarget } from './address.js';
import { type HitsEntry, MAX_HITS_ENTRIES, MAX_HITS_PER_ENTRY } from './fleet-hits.js';

// Apart from fleet-hits.ts, which agents load to build batches: only the hub checks them, and the
// schema library is not loaded by an agent (ADR 0039).

const RULE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const bodySchema = z.strictObject({
  entries: z
    .array(
      z.strictObject({
        target: z.string().min(1).max(64),
        rule: z.string().regex(RULE_NAME),
        hits: z.number().int().min(1).max(MAX_HITS_PER_ENTRY),
      }),
    )
    .min(1)
    .max(MAX_HITS_ENTRIES),
});

export type ParsedHits =
  | { ok: true; entries: Array<HitsEntry & { parsed: Target }> }
  | { ok: false; error: string };

/** Checks an untrusted `hits` body; targets come back canonical with their parsed form. */
export function parseHitsBody(body: unknown): ParsedHits {
  const r = bodySchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    return { ok: false, error: `hits.${issue.path.join('.')}: ${issue.message}` };
  }
  const entries: Array<HitsEntry & { parsed: Target }> = [];
  for (let i = 0; i < r.data.entries.length; i++) {
    const e = r.data.entries[i]!;
    const parsed = tryParseTarget(e.target);
    if (parsed === null) return { ok: false, error: `hits.entries.${i}.target: not an address` };
    entries.push({ target: parsed.text, rule: e.rule, hits: e.hits, parsed });
  }
  return { ok: true, entries };
}

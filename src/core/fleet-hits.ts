import { z } from 'zod';
import { type Target, tryParseTarget } from './address.js';

/**
 * The body of a `hits` envelope: an agent's failures below the local threshold since its last
 * batch, coalesced per (address, rule). The hub adds them up across the fleet
 * (hub/fleet-counter.ts). A strict contract: an unknown field or a wrong type refuses the whole
 * envelope, since a correct agent never sends one.
 */
export interface HitsBody {
  entries: HitsEntry[];
}

export interface HitsEntry {
  /** Canonical address, or an IPv6 /64 where the rule widens. */
  target: string;
  rule: string;
  /** Failures since the previous batch (the hub counts at most its per-node cap of them). */
  hits: number;
}

/** Most entries in one batch: 256 × ~120 bytes stays well under the 64 KiB envelope limit. */
export const MAX_HITS_ENTRIES = 256;
/** A coalesced entry's count saturates here; the hub caps a node far lower anyway. */
export const MAX_HITS_PER_ENTRY = 1000;

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

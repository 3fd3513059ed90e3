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

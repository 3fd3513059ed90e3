import { PACKED_DECISIONS } from '../core/packed-decisions.js';

/**
 * A node counts as a reader of packed decisions while its last heartbeat said so and is at most
 * this old (30 heartbeats at the default interval). Older or never heard: unknown, so unpacked.
 */
const HEARD_WITHIN_MS = 5 * 60_000;
/**
 * How often a hub that has not heard some node may read the heartbeats other hubs recorded in the
 * store (one `listNodes`; a node that is down keeps the answer at no for as long as it is down).
 */
const STORE_REREAD_MS = 2000;
/** How long one answer of {@link PackedReaders.all} is reused (it walks every enrolled node). */
const ANSWER_MS = 1000;

/**
 * Which enrolled nodes said, in their heartbeat's `reads`, that they take `decisions-packed`
 * envelopes (ADR 0052). One message on the decisions topic reaches every node, so the hub packs
 * only when all of them do; a node it has not heard from lately (down, or an old version that
 * never says) keeps the fleet on the unpacked form. An old agent that comes back while the hub
 * packs drops the packed envelopes it gets (`wrong-kind`) until its first heartbeat turns the
 * hub back, and the first unpacked envelope then shows it the gap it fetches over HTTP.
 */
export class PackedReaders {
  private readonly heard = new Map<string, { packed: boolean; at: number }>();
  private answer: { value: boolean; at: number; nodes: number; unheard: boolean } | undefined;
  private storeReadAt = Number.NEGATIVE_INFINITY;
  private changedSinceStoreRead = false;

  /**
   * A verified heartbeat's `reads` field, whatever its shape; returns what the store keeps of it
   * for the other hubs ({@link recorded}).
   */
  heartbeat(node: string, reads: unknown, now: number): string {
    const packed = Array.isArray(reads) && reads.includes(PACKED_DECISIONS);
    this.set(node, packed, now);
    return packed ? PACKED_DECISIONS : '';
  }

  /**
   * What the store says a node's last heartbeat held, through whichever hub took it: with several
   * hubs on one store, each heartbeat reaches one of them (a shared consumer), and a hub that
   * heard only some nodes sent every node the unpacked form (ADR 0063). Newer news only.
   */
  recorded(node: string, reads: string | null, lastSeen: number | null): void {
    if (reads === null || lastSeen === null) return;
    const before = this.heard.get(node);
    if (before !== undefined && before.at >= lastSeen) return;
    this.set(node, reads.split(',').includes(PACKED_DECISIONS), lastSeen);
  }

  private set(node: string, packed: boolean, at: number): void {
    const before = this.heard.get(node);
    this.heard.set(node, { packed, at });
    if (before?.packed !== packed) this.answer = undefined;
  }

  /** A removed node, or one enrolled anew (perhaps with another version). */
  forget(node: string): void {
    this.changedSinceStoreRead = true;
    if (this.heard.delete(node)) this.answer = undefined;
  }

  /** Whether every one of `nodes` (the enrolled ones, at least one) reads packed decisions. */
  all(nodes: ReadonlyMap<string, unknown>, now: number): boolean {
    const a = this.answer;
    if (a !== undefined && now - a.at < ANSWER_MS && a.nodes === nodes.size) return a.value;
    let value = nodes.size > 0;
    let unheard = false;
    for (const name of nodes.keys()) {
      const h = this.heard.get(name);
      if (h === undefined || now - h.at > HEARD_WITHIN_MS) {
        value = false;
        unheard = true;
        break;
      }
      if (!h.packed) value = false;
    }
    this.answer = { value, at: now, nodes: nodes.size, unheard };
    return value;
  }

  /**
   * Whether to read what the store recorded now: the last {@link all} answered no because a node
   * was not heard from lately (not because one said it does not read packed decisions), and the
   * store was not read in the last STORE_REREAD_MS, or a node was enrolled or removed since.
   * Answers yes at most that often, and counts the read as made.
   */
  wantsStoreRead(now: number): boolean {
    if (this.answer?.unheard !== true) return false;
    if (now - this.storeReadAt < STORE_REREAD_MS && !this.changedSinceStoreRead) return false;
    this.storeReadAt = now;
    this.changedSinceStoreRead = false;
    return true;
  }
}

/**
 * Slows a node whose bus messages the hub keeps refusing (junk, bad signatures, reports past its
 * budget): each refusal takes a token from the node's bucket, and an empty bucket makes the
 * broker stop reading the node's connections for a while (ADR 0037). The fair
 * queue and the budget already keep other nodes' reports moving during a flood, but every packet
 * a flooder sends is still parsed, queued and refused, and that work (and the garbage it leaves)
 * delays everyone. Held, the flooder's packets wait in its own TCP buffers instead.
 *
 * An honest agent sends nothing that is refused for its form or signature. Its only refusals are
 * reports past its budget, when an attack from thousands of addresses hits its machine at once;
 * those weigh a tenth each, so such a burst does not hold it, while a node pouring signed reports
 * far past its budget (a compromised node) is held all the same.
 */
import type { HubDropReason } from '../core.js';

export interface OffenderThrottleOptions {
  /** Refusals a node may collect at once before it is held (default 20; ADR 0041). */
  strikes?: number;
  /** Refusals forgiven per second (default 20). */
  refillPerSecond?: number;
  /** First hold (ms, default 1,000); doubles while the node goes on, up to {@link maxHoldMs}. */
  firstHoldMs?: number;
  /** Longest hold (ms, default 30,000). */
  maxHoldMs?: number;
  now?: () => number;
}

export interface ThrottleSettings {
  strikes: number;
  refillPerSecond: number;
  firstHoldMs: number;
  maxHoldMs: number;
}

interface Offender {
  tokens: number;
  at: number;
  holdMs: number;
  heldUntil: number;
}

/** Refusals an honest but busy node can get: its reports past its budget or its queue. */
const BUSY: ReadonlySet<HubDropReason> = new Set(['over-budget', 'queue-full']);
const BUSY_WEIGHT = 0.1;

/** Nodes tracked at once; refusals on topics naming many invented nodes must not grow it forever. */
const MAX_NODES = 10_000;

export class OffenderThrottle {
  readonly settings: ThrottleSettings;
  private readonly nodes = new Map<string, Offender>();
  private readonly now: () => number;

  constructor(
    /** Holds `node` for `ms`; returns how many connections that reached (0: nothing to hold). */
    private readonly hold: (node: string, ms: number) => number,
    /** Told each time a node is held (log, metric). */
    private readonly onHold: (node: string, ms: number, connections: number) => void,
    o: OffenderThrottleOptions = {},
  ) {
    this.settings = {
      strikes: o.strikes ?? 20,
      refillPerSecond: o.refillPerSecond ?? 20,
      firstHoldMs: o.firstHoldMs ?? 1_000,
      maxHoldMs: o.maxHoldMs ?? 30_000,
    };
    this.now = o.now ?? (() => performance.now());
  }

  /** How long `node` stays held (ms; 0 when it is not held). */
  heldFor(node: string): number {
    const o = this.nodes.get(node);
    return o ? Math.max(0, o.heldUntil - this.now()) : 0;
  }

  /** One message from `node` refused for `reason`. */
  strike(node: string, reason: HubDropReason): void {
    const s = this.settings;
    const now = this.now();
    let o = this.nodes.get(node);
    if (!o) {
      if (this.nodes.size >= MAX_NODES) this.nodes.delete(this.nodes.keys().next().value as string);
      o = { tokens: s.strikes, at: now, holdMs: 0, heldUntil: 0 };
      this.nodes.set(node, o);
    }
    o.tokens = Math.min(s.strikes, o.tokens + ((now - o.at) / 1000) * s.refillPerSecond);
    o.at = now;
    o.tokens -= BUSY.has(reason) ? BUSY_WEIGHT : 1;
    // Refusals of what it sent before the hold began arrive during the hold: not a new offence.
    if (o.tokens >= 0 || now < o.heldUntil) return;
    // Doubles when it offends again soon after its last hold ended; starts over after a calm spell.
    const again = o.heldUntil > 0 && now - o.heldUntil < s.maxHoldMs;
    o.holdMs = again ? Math.min(s.maxHoldMs, o.holdMs * 2) : s.firstHoldMs;
    o.heldUntil = now + o.holdMs;
    o.tokens = 0;
    this.onHold(node, o.holdMs, this.hold(node, o.holdMs));
  }
}

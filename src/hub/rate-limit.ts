/**
 * A token bucket per node: `burst` decisions at once, refilled at `perMinute`. A node that floods
 * (broken, or compromised and trying to ban the internet) is refused past its budget, while the
 * rest of the fleet is unaffected. Time is passed in, so the limiter is pure and testable.
 */
export class NodeRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly burst: number,
    readonly perMinute: number,
  ) {}

  /** Takes one token for `node`; false when its bucket is empty. */
  take(node: string, now: number): boolean {
    let b = this.buckets.get(node);
    if (!b) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(node, b);
    }
    b.tokens = this.level(b, now);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * Whether `node` has a token now, taking none: the bus intake asks before it spends a signature
   * verify on a report. Only verified decisions take tokens, so a forger cannot drain a bucket.
   */
  has(node: string, now: number): boolean {
    const b = this.buckets.get(node);
    return b === undefined || this.level(b, now) >= 1;
  }

  private level(b: { tokens: number; at: number }, now: number): number {
    const elapsed = Math.max(0, now - b.at);
    return Math.min(this.burst, b.tokens + (elapsed * this.perMinute) / 60_000);
  }

  /** Forgets a node (removed from the fleet), so the map stays bounded by enrolled nodes. */
  forget(node: string): void {
    this.buckets.delete(node);
  }
}

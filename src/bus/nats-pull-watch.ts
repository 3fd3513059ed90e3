/**
 * Watches a JetStream pull consumer's pulls and pulls again when the server dropped the last one
 * without saying so (ADR 0069).
 *
 * nats.js's `consume()` pulls again when a pull's `408 Request Timeout` arrives (it carries the
 * messages left, so the client knows the pull is gone). nats-server 2.9.10 (Debian's) also drops
 * an expired pull, without a 408, when a message reaches the consumer after the pull's expiry but
 * before the server's expiry timer ran: a window of milliseconds that CPU contention widens. The
 * client then believes its pull is open, the message waits in the stream, and only the client's
 * missed-heartbeat check (two beats of silence) pulls again: a decision 2-3 s late. Fixed upstream
 * in nats-server 2.9.16 (its PR 3942), but a fleet may run an older server.
 *
 * Every pull consume() sends is reported as a `next` status. Once the newest pull has expired
 * (its `expires` plus `graceMs`) without a newer one, the server holds no pull for us unless its
 * 408 is merely late: a round trip to the server (its answer comes after anything the server sent
 * before it) tells the two apart, and when nothing newer was pulled by then, `repull` runs.
 */
export interface PullWatchOptions {
  /** The pull's `expires`, ms. */
  expiresMs: number;
  /** How long past the expiry to wait for the 408 before asking the server. */
  graceMs: number;
  /** A round trip to the server (`nc.flush()`). */
  flush(): Promise<void>;
  /** Pull again (the client's own recovery after missed heartbeats). */
  repull(): void;
}

export class PullWatch {
  /** Bumped by every pull consume() sends. */
  private pulls = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: PullWatchOptions) {}

  /** Feed every status notification of the consumer here. */
  note(status: { type: string }): void {
    if (status.type !== 'next' || this.stopped) return;
    const pull = ++this.pulls;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(pull), this.o.expiresMs + this.o.graceMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async check(pull: number): Promise<void> {
    if (this.stopped || pull !== this.pulls) return;
    try {
      await this.o.flush();
    } catch {
      // Disconnected: the client pulls again itself once reconnected.
      return;
    }
    // Let a 408 read before the round trip's answer reach consume() and its new pull be noted.
    await new Promise((r) => setImmediate(r));
    if (this.stopped || pull !== this.pulls) return;
    this.o.repull();
  }
}

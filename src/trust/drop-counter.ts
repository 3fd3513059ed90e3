/** Why {@link open} refused an envelope; also the `reason` label of the dropped-messages metric. */
export const DROP_REASONS = [
  'malformed',
  'unsigned',
  'bad-signature',
  'unknown-sender',
  'expired',
  'future',
  'replay',
  'wrong-kind',
  'too-large',
  'undecryptable',
  'unencrypted',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

/** Counts refused messages by reason, for `/metrics` and `rampart status`. */
export class DropCounter {
  private readonly counts = new Map<DropReason, number>();

  inc(reason: DropReason): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }

  get(reason: DropReason): number {
    return this.counts.get(reason) ?? 0;
  }

  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  /** Every reason, zeros included, so a metric exporter can publish the full label set. */
  snapshot(): Record<DropReason, number> {
    const out = {} as Record<DropReason, number>;
    for (const r of DROP_REASONS) out[r] = this.get(r);
    return out;
  }
}

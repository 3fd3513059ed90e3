/**
 * Values keyed by (target, set) without a key string per call: a map of sets, each a map of
 * targets. A bulk slice looks up every item several times; `${target}\n${set}` made, flattened and
 * hashed a new string for each.
 */
export class PairMap<V> {
  private readonly bySet = new Map<string, Map<string, V>>();

  get(target: string, set: string): V | undefined {
    return this.bySet.get(set)?.get(target);
  }

  has(target: string, set: string): boolean {
    return this.bySet.get(set)?.has(target) ?? false;
  }

  set(target: string, set: string, value: V): void {
    let inSet = this.bySet.get(set);
    if (inSet === undefined) {
      inSet = new Map();
      this.bySet.set(set, inSet);
    }
    inSet.set(target, value);
  }

  /** Every value, set by set (each set's in the order its targets were first set). */
  *values(): IterableIterator<V> {
    for (const inSet of this.bySet.values()) yield* inSet.values();
  }
}

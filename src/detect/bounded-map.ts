/**
 * A map capped at `max` entries that evicts the least recently seen ones, in two generations
 * (the scheme of the quick-lru package): new and touched entries live in `young`; when `young`
 * holds half the cap it becomes `old` and the previous `old` is dropped, so everything not seen
 * for a whole generation is evicted at once. A hit costs one Map lookup, where an exact LRU
 * (delete + re-insert on every hit) costs three and dominated detection profiles.
 */
export class BoundedMap<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly generation: number;
  /** Entries dropped because the cap was reached. */
  evictions = 0;

  /** @param max the cap (at least 2); an odd cap holds one fewer. */
  constructor(readonly max: number) {
    this.generation = Math.max(1, Math.floor(max / 2));
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The value, marking it recently seen. */
  get(key: K): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.insert(key, o);
    }
    return o;
  }

  set(key: K, value: V): void {
    if (this.young.has(key)) this.young.set(key, value);
    else {
      this.old.delete(key);
      this.insert(key, value);
    }
  }

  delete(key: K): boolean {
    return this.young.delete(key) || this.old.delete(key);
  }

  private insert(key: K, value: V): void {
    if (this.young.size >= this.generation) {
      this.evictions += this.old.size;
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}

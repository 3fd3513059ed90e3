/**
 * A repeatable stream of numbers in [0, 1) for generated test inputs: the same seed gives the same
 * cases on every run, so a failure names an input that can be replayed.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * The class `key` of `impl`, a set of classes a caller imported for a factory (all of them, or only
 * the one a config names, so a long-running agent holds no module it never runs; ADR 0060). One
 * missing is the caller's bug, not the user's: a plain Error naming `what` and the key.
 */
export function loaded<T extends object, K extends keyof T>(
  impl: T,
  key: K,
  what: string,
): NonNullable<T[K]> {
  const c = impl[key];
  if (!c) throw new Error(`${what}: ${String(key)} was not loaded`);
  return c as NonNullable<T[K]>;
}

/**
 * The Node.js flags rampart's own processes run with, wherever a user or a service starts them:
 * the `rampart` command's first line (`#!/usr/bin/env -S node …`, so the systemd units and
 * packaging/install.sh get them), `npm start`, and the benchmarks that start the CLI or a hub.
 * test/cli/node-flags.test.ts keeps the first two in step with this list (ADR 0041).
 *
 * `--max-semi-space-size=4`: V8 lets the young generation grow to 2 × 16 MiB once a burst of
 * traffic survives a few scavenges. Growing it makes the next scavenge touch every new page, and
 * first touches are slow on virtual machines (about 13 µs a page measured here): single pauses of
 * 45-65 ms in the hub at the start of a flood, and 32 MiB of RSS that an idle agent never gives
 * back. Capped at 2 × 4 MiB, scavenges stay short and frequent; these flags cannot be set from
 * inside a running process (V8 sizes its heap once, at start).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** `args` for `spawn(process.execPath, …)` that starts a script the way rampart's processes start. */
export function nodeArgs(script: string, ...args: string[]): string[] {
  return [...NODE_FLAGS, script, ...args];
}

/** Whether this process was started with {@link NODE_FLAGS} (as `node` flags, not script arguments). */
export function hasNodeFlags(execArgv: readonly string[] = process.execArgv): boolean {
  return NODE_FLAGS.every((f) => execArgv.includes(f));
}

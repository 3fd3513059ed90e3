import { setFlagsFromString } from 'node:v8';

let holds = 0;

/**
 * Holds V8's optimising compiler (TurboFan) while a long-running process loads modules; returns
 * the release (call it once). Holds nest: the compiler is back when the last one is released.
 *
 * Loading the agent's ≈ 290 modules makes the module loader's own functions hot (path
 * normalisation, resolution, the CommonJS export lexer), and TurboFan optimises them on its
 * background threads. What that leaves resident in an agent that then idles: ≈ 3 MB of TurboFan's
 * own code pages in the node binary and its compile memory in those threads' malloc arenas, about
 * 6-8 MB of RSS in all (ADR 0047), for functions that run once. The flag is read at each tiering
 * decision, so holding and releasing it at run time works; code that becomes hot afterwards (bans,
 * a reconcile, a bulk load) is optimised as before. Hold only around loading, never around work
 * that can be heavy (restoring or catching up a million bans).
 */
export function holdOptimizingCompiler(): () => void {
  if (holds++ === 0) setFlagsFromString('--no-opt');
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holds === 0) setFlagsFromString('--opt');
  };
}

let startup: (() => void) | undefined;

/** The agent's hold from its first line until its modules are loaded (cli/main.ts). */
export function holdForStartup(): void {
  startup ??= holdOptimizingCompiler();
}

/** Ends {@link holdForStartup}'s hold (before the agent starts its work); a no-op without one. */
export function releaseStartupHold(): void {
  startup?.();
}

/**
 * V8's optimising compiler compiles each hot function alone, without copying the functions it
 * calls into it (ADR 0057). A long-running process compiles its hot paths once; with inlining
 * each compile takes in the callees' graphs too, and a callee's object shapes settling later
 * (fields widened, constants written) throws away and recompiles every caller it went into. On
 * the bulk path that compile work, on V8's helper threads, was up to half of a freshly started
 * agent's CPU per decision, and the inlined code did not run faster in steady state (in-process
 * agent, 36,000 decisions after a 4,000 warm-up: 5.6 µs a decision without inlining, 6.25 with).
 * Read at each compile, so it applies from the first one made after the call.
 */
export function compileWithoutInlining(): void {
  setFlagsFromString('--no-turbo-inlining');
}

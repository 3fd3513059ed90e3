import vm from 'node:vm';

/**
 * Runs a function under a wall-clock deadline that can stop it mid-match. A regular expression
 * that backtracks polynomially (`(.*a){12}` on a long line without an `a`) never trips V8's
 * backtrack budget, so nothing else interrupts it; `vm`'s `timeout` does: Node's watchdog thread
 * terminates the running JavaScript, regex included, and the call throws. That thread is started
 * per call (≈ 0.3 ms measured), so the engine only watches long lines (see EngineOptions
 * `ruleBudget`), where a super-linear pattern can cost seconds.
 */
export class Watchdog {
  private readonly sandbox: { job: (() => unknown) | null; result: unknown };
  private readonly context: vm.Context;
  // The job is a function of this realm called from the context: it runs with its own globals.
  private readonly script = new vm.Script('result = job()');

  constructor() {
    this.sandbox = { job: null, result: undefined };
    this.context = vm.createContext(this.sandbox);
  }

  /** `fn`'s result, or `undefined` when it ran past `ms` milliseconds and was stopped. */
  run<T>(ms: number, fn: () => T): { value: T } | undefined {
    this.sandbox.job = fn;
    try {
      this.script.runInContext(this.context, { timeout: ms });
      return { value: this.sandbox.result as T };
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return undefined;
      throw err;
    } finally {
      this.sandbox.job = null;
      this.sandbox.result = undefined;
    }
  }
}

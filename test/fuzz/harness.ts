import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { afterAll } from 'vitest';
import { type ERROR_CODES, RampartError } from '../../src/core/errors.js';

/**
 * Shared machinery of the fuzz suites (docs/testing.md). Each test file is one parser family;
 * each `prop()` in it runs a fast-check property with a per-input time bound and counts what it
 * generated, so the family can print `{family, inputs, crashes, hangs, maxRssMB, seconds}`.
 *
 * Knobs (environment):
 * - `FUZZ_RUNS`: runs of every property, overriding the per-property defaults;
 * - `FUZZ_SCALE`: multiplies the defaults instead (`npm run fuzz` uses 10);
 * - `FUZZ_SEED` (+ `FUZZ_PATH`): replay the seed (and shrink path) fast-check printed on failure;
 * - `FUZZ_REPORT`: a file to append the per-family JSON lines to (they are printed as well).
 */

const env = process.env;
const SCALE = Number(env.FUZZ_SCALE ?? 1);
const SEED = env.FUZZ_SEED === undefined ? undefined : Number(env.FUZZ_SEED);
const PATH = env.FUZZ_PATH;

/** Runs for a property whose CI default is `base`. */
export function runs(base: number): number {
  if (env.FUZZ_RUNS !== undefined) return Math.max(1, Number(env.FUZZ_RUNS));
  return Math.max(1, Math.round(base * SCALE));
}

/** The vitest timeout for a property expected to take `ciSeconds` at the CI default. */
export function timeout(ciSeconds: number): number {
  const factor = env.FUZZ_RUNS !== undefined ? Infinity : SCALE;
  return Number.isFinite(factor) ? Math.max(60_000, ciSeconds * 1000 * factor * 3) : 24 * 3_600_000;
}

class HangError extends Error {}

export interface PropOptions {
  /** Default number of inputs in CI (scaled by FUZZ_SCALE, replaced by FUZZ_RUNS). */
  runs: number;
  /** Longest any one input may take, ms; a slower one is a hang and fails the property. */
  boundMs?: number;
}

export interface Family {
  /** Runs a synchronous property; throws (fails the test) with fast-check's seed on a counterexample. */
  prop<T>(name: string, arb: fc.Arbitrary<T>, check: (value: T) => void, o: PropOptions): void;
  /** The same for a property that awaits (HTTP). */
  propAsync<T>(
    name: string,
    arb: fc.Arbitrary<T>,
    check: (value: T) => Promise<void>,
    o: PropOptions,
  ): Promise<void>;
}

/** CPU milliseconds this process spent since `from`. */
function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** Registers a family: its counters, and an afterAll that prints (and appends) its JSON line. */
export function family(name: string): Family {
  const stats = { inputs: 0, crashes: 0, hangs: 0, maxRss: process.memoryUsage.rss(), ms: 0, cpuMs: 0 };
  afterAll(() => {
    const line = JSON.stringify({
      family: name,
      inputs: stats.inputs,
      crashes: stats.crashes,
      hangs: stats.hangs,
      maxRssMB: Math.round(stats.maxRss / 1048576),
      seconds: Math.round(stats.ms / 100) / 10,
      // The process's CPU time (user + system): on a shared box it says what `seconds` cannot.
      cpuSeconds: Math.round(stats.cpuMs / 100) / 10,
    });
    process.stdout.write(`${line}\n`);
    if (env.FUZZ_REPORT) appendFileSync(env.FUZZ_REPORT, `${line}\n`);
  });
  const sample = () => {
    if (stats.inputs % 512 === 0) stats.maxRss = Math.max(stats.maxRss, process.memoryUsage.rss());
  };
  const timed = (boundMs: number, started: number) => {
    const took = performance.now() - started;
    if (took > boundMs) throw new HangError(`input took ${took.toFixed(0)} ms (bound ${boundMs} ms)`);
  };
  const params = (n: number): fc.Parameters<unknown> => ({
    numRuns: n,
    ...(SEED === undefined ? {} : { seed: SEED }),
    ...(PATH === undefined ? {} : { path: PATH }),
  });
  const account = (err: unknown) => {
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof HangError) stats.hangs++;
    else stats.crashes++;
  };
  return {
    prop(propName, arb, check, o) {
      const bound = o.boundMs ?? 250;
      const started = performance.now();
      const cpu = process.cpuUsage();
      try {
        fc.assert(
          fc.property(arb, (v) => {
            stats.inputs++;
            sample();
            const t0 = performance.now();
            check(v);
            // A GC pause or a busy neighbour can stall one input: only a second slow run is a hang.
            if (performance.now() - t0 > bound) {
              const t1 = performance.now();
              check(v);
              timed(bound, t1);
            }
          }),
          params(runs(o.runs)) as fc.Parameters<[typeof arb extends fc.Arbitrary<infer U> ? U : never]>,
        );
      } catch (err) {
        account(err);
        throw new Error(`${name} / ${propName}: ${(err as Error).message}`, { cause: err });
      } finally {
        stats.ms += performance.now() - started;
        stats.cpuMs += cpuMs(cpu);
      }
    },
    async propAsync(propName, arb, check, o) {
      const bound = o.boundMs ?? 2000;
      const started = performance.now();
      const cpu = process.cpuUsage();
      try {
        await fc.assert(
          fc.asyncProperty(arb, async (v) => {
            stats.inputs++;
            sample();
            const t0 = performance.now();
            await check(v);
            if (performance.now() - t0 > bound) {
              const t1 = performance.now();
              await check(v);
              timed(bound, t1);
            }
          }),
          params(runs(o.runs)) as fc.Parameters<[typeof arb extends fc.Arbitrary<infer U> ? U : never]>,
        );
      } catch (err) {
        account(err);
        throw new Error(`${name} / ${propName}: ${(err as Error).message}`, { cause: err });
      } finally {
        stats.ms += performance.now() - started;
        stats.cpuMs += cpuMs(cpu);
      }
    },
  };
}

/**
 * Calls `fn`; a RampartError with one of `codes` (documented in core/errors.ts) is an accepted
 * refusal and gives undefined. Anything else thrown (TypeError, RangeError, a bare Error, an
 * undocumented code) fails the property. The message must stay bounded: it goes to a log line.
 */
export function refusedWith<T>(codes: readonly (keyof typeof ERROR_CODES)[], fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof RampartError)) throw err;
    if (!codes.includes(err.code as keyof typeof ERROR_CODES)) {
      throw new Error(`unexpected code ${err.code}: ${err.message}`, { cause: err });
    }
    if (err.message.length > 2048) throw new Error(`error message of ${err.message.length} characters`);
    return undefined;
  }
}

// --- generators shared by several families --------------------------------------------------------

/** Text built mostly from `alphabet` (the characters a format cares about) with some of anything. */
export function textFrom(alphabet: string, maxLength = 64): fc.Arbitrary<string> {
  const chars = [...alphabet];
  return fc
    .array(
      fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...chars) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
      ),
      { maxLength },
    )
    .map((a) => a.join(''));
}

/** A valid sample with some bytes flipped, inserted, deleted or cut: near-miss inputs. */
export function mutated(sample: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 255 }));
  return fc.tuple(sample, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([buf, edits]) => {
    let b = Buffer.from(buf);
    for (const [at, op, byte] of edits) {
      const i = b.length === 0 ? 0 : at % b.length;
      if (op === 0 && b.length > 0) b[i] = b[i]! ^ (byte || 1);
      else if (op === 1) b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
      else if (op === 2) b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
      else if (op === 3) b = b.subarray(0, i);
      else b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + 1 + (byte % 8)), b.subarray(i)]);
    }
    return b;
  });
}

/** Documentation addresses (the only ones tests may use) in every spelling detection sees. */
export const docAddress: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(fc.constantFrom('192.0.2', '198.51.100', '203.0.113'), fc.integer({ min: 1, max: 254 }))
    .map(([n, h]) => `${n}.${h}`),
  fc
    .tuple(fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }))
    .map(([a, b]) => `2001:db8::${a.toString(16)}:${b.toString(16)}`),
);

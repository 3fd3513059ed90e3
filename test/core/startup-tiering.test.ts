import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = pathToFileURL(resolve('dist/core/startup-tiering.js')).href;

/**
 * A hot function, run in a child node (the built module, --trace-opt): not optimised while a hold
 * is on, optimised once the last nested hold is released (ADR 0047).
 */
function phases(script: string): string[] {
  const out = execFileSync(process.execPath, ['--trace-opt', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  });
  // Which phase each optimisation of `hot` finished in.
  const seen: string[] = [];
  let phase = '';
  for (const line of out.split('\n')) {
    const m = /^phase (\w+)/.exec(line);
    if (m) phase = m[1]!;
    else if (/completed optimizing .*JSFunction hot /.test(line)) seen.push(phase);
  }
  return seen;
}

describe('holding the optimising compiler', () => {
  it('nothing is optimised under nested holds; the function is once the last is released', () => {
    const seen = phases(`
      const { holdOptimizingCompiler } = await import(${JSON.stringify(MODULE)});
      function hot(x) { let s = 0; for (let i = 0; i < 50; i++) s += (x * i) % 7; return s; }
      const spin = async () => { let t = 0; for (let i = 0; i < 300000; i++) t += hot(i); await new Promise((r) => setTimeout(r, 50)); return t; };
      console.log('phase held');
      const outer = holdOptimizingCompiler();
      const inner = holdOptimizingCompiler();
      await spin();
      inner();
      inner();
      console.log('phase stillheld');
      await spin();
      outer();
      console.log('phase released');
      await spin();
      await spin();
      console.log('phase end');
    `);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((p) => p === 'released')).toBe(true);
  });
});

describe('compiling without inlining', () => {
  // A small function called from a hot loop: TurboFan copies it into its caller unless told not to.
  const script = (off: boolean) => `
    const { compileWithoutInlining } = await import(${JSON.stringify(MODULE)});
    ${off ? 'compileWithoutInlining();' : ''}
    function small(x) { return (x * 7) % 11; }
    function outer(n) { let s = 0; for (let i = 0; i < n; i++) s += small(i); return s; }
    let t = 0;
    for (let i = 0; i < 5000; i++) t += outer(200);
    console.log('sum', t);
  `;
  const inlined = (off: boolean) =>
    execFileSync(process.execPath, ['--trace-turbo-inlining', '--input-type=module', '-e', script(off)], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter((l) => /^Inlining .*SharedFunctionInfo small/.test(l)).length;

  it('a hot caller is compiled without its callee once it is called; with it otherwise', () => {
    expect(inlined(false)).toBeGreaterThan(0);
    expect(inlined(true)).toBe(0);
  });
});

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * In a fresh node (the module cache is the point): which packages loading mqtt.js brought in, and
 * whether its timers still run, through its own keepalive helper.
 */
function probe(): {
  loaded: string[];
  files: string[];
  native: boolean;
  ticked: boolean;
  readableIsNode: boolean;
  env: string;
} {
  const script = `
    const { loadMqtt } = await import(${JSON.stringify(resolve('dist/bus/mqtt-load.js'))});
    const { createRequire } = await import('node:module');
    loadMqtt();
    const require = createRequire(${JSON.stringify(resolve('dist/bus/mqtt-load.js'))});
    const { dirname, join } = await import('node:path');
    const getTimer = require(join(dirname(require.resolve('mqtt')), 'lib/get-timer.js')).default;
    const timer = getTimer('auto');
    let ticks = 0;
    const id = timer.set(() => ticks++, 5);
    await new Promise((r) => setTimeout(r, 50));
    timer.clear(id);
    const loaded = Object.keys(require.cache)
      .filter((p) => require.cache[p].loaded && require.cache[p].exports && !require.cache[p].exports.setInterval?.toString().includes('not loaded'))
      .map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p)?.[1]);
    const { Readable } = await import('node:stream');
    const readableIsNode = require(require.resolve('readable-stream', { paths: [require.resolve('mqtt')] })).Readable === Readable;
    console.log(JSON.stringify({ files: Object.keys(require.cache), readableIsNode, env: process.env.READABLE_STREAM ?? 'unset', loaded: [...new Set(loaded)], native: timer.set.toString().includes('setInterval(func'), ticked: ticks > 2 }));
  `;
  return JSON.parse(
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }),
  );
}

describe('mqtt.js loaded for the agent', () => {
  it('loads neither worker-timers nor a copy of node streams, and keeps node timers working', () => {
    const got = probe();
    expect(got.loaded).toContain('mqtt');
    expect(got.loaded).not.toContain('worker-timers');
    expect(got.loaded.filter((p) => p.startsWith('@babel/') || p.startsWith('worker-timers'))).toEqual([]);
    // readable-stream is loaded, but only its switch to node's streams: none of its own copies.
    expect(got.files.filter((f) => f.includes('/readable-stream/lib/internal/'))).toEqual([]);
    expect(got.readableIsNode).toBe(true);
    expect(got.env).toBe('unset');
    expect(got).toMatchObject({ native: true, ticked: true });
  });
});

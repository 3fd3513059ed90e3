import { createRequire, Module } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * mqtt.js, loaded without `worker-timers` and on node's own streams. An idle agent keeps every
 * module it loaded resident (ADR 0064).
 *
 * - mqtt.js's timer helper requires `worker-timers` (a browser web-worker timer, with
 *   broker-factory, fast-unique-numbers and 21 `@babel/runtime` modules) at load, whatever the
 *   platform, and uses it only in a browser page: in node it takes the native timers. The package
 *   is put in require's cache as a stub first, one that throws should mqtt.js ever call it here.
 * - mqtt.js and its packet parser use `readable-stream`, a copy of node's streams in 25 modules.
 *   That package's own switch (READABLE_STREAM=disable, read once as it loads) makes it hand out
 *   `node:stream` instead. It is set for the load only: child processes and anything loaded later
 *   see the environment as it was.
 *
 * CommonJS loaded with require, not import (ADR 0056).
 */
export function loadMqtt(): typeof import('mqtt') {
  const fromMqtt = createRequire(require.resolve('mqtt'));
  let path: string | undefined;
  try {
    path = fromMqtt.resolve('worker-timers');
  } catch {
    // mqtt.js no longer depends on it: nothing to keep out.
  }
  if (path !== undefined && require.cache[path] === undefined) {
    const stub = new Module(path);
    stub.filename = path;
    stub.loaded = true;
    const unusable = () => {
      throw new Error('worker-timers is not loaded in node (bus/mqtt-load.ts)');
    };
    stub.exports = {
      setInterval: unusable,
      clearInterval: unusable,
      setTimeout: unusable,
      clearTimeout: unusable,
    };
    require.cache[path] = stub;
  }
  const before = process.env.READABLE_STREAM;
  process.env.READABLE_STREAM = 'disable';
  try {
    return require('mqtt') as typeof import('mqtt');
  } finally {
    if (before === undefined) delete process.env.READABLE_STREAM;
    else process.env.READABLE_STREAM = before;
  }
}

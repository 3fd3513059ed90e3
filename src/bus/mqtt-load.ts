import { createRequire, Module } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * mqtt.js, loaded without `worker-timers`. Its timer helper requires that package (a browser
 * web-worker timer, with broker-factory, fast-unique-numbers and 21 `@babel/runtime` modules) at
 * load, whatever the platform, and uses it only in a browser page; in node it always takes the
 * native timers. An idle agent keeps every module it loaded resident (ADR 0064), so the package is
 * put in require's cache as a stub first: a stub that throws, should mqtt.js ever call it here.
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
  return require('mqtt') as typeof import('mqtt');
}

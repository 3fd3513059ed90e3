import { parentPort, workerData } from 'node:worker_threads';
import { type AgentConfigRequest, readAgentConfig } from './agent-config.js';

/**
 * The body of the thread {@link loadAgentConfig} starts: validates, answers with plain data (or
 * the error's parts), and ends. Its isolate, the YAML parser and the schema library go with it.
 */
readAgentConfig(workerData as AgentConfigRequest).then(
  (value) => parentPort!.postMessage({ ok: true, value }),
  (err: Error & { code?: string; file?: string; line?: number; key?: string }) =>
    parentPort!.postMessage({
      ok: false,
      error: {
        name: err.name,
        message: err.message,
        code: err.code,
        file: err.file,
        line: err.line,
        key: err.key,
        stack: err.stack,
      },
    }),
);

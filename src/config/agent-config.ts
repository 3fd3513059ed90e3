import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { AGENT_FILES, agentDir, readEnrolment } from '../agent/files.js';
import { ConfigError, RampartError } from '../core/errors.js';
import { releaseFreedMemory } from '../core/release-memory.js';
import type { RampartConfig } from './schema.js';

/**
 * What `rampart agent` reads before it builds anything: rampart.yaml (or the defaults), `--bus`
 * merged into its `bus:` section, the data folder, and the enrolment `rampart join` wrote there. Every file is validated
 * against the same schemas as everywhere else; only where it runs differs (see
 * {@link loadAgentConfig}).
 */
export interface AgentConfigRequest {
  /** `--config FILE`; absent: /etc/rampart/rampart.yaml when present, else the defaults. */
  file?: string;
  /** `--bus URL[,URL...]`. */
  bus?: string;
  /** `--data DIR`: ahead of the config's `data:`. */
  data?: string;
  /** The data folder when neither says one. */
  defaultData: string;
}

export interface AgentConfig {
  config: RampartConfig & { file?: string };
  dataDir: string;
  /** DATA/agent/agent.yaml, when this server has joined. */
  enrol?: RampartConfig;
}

/** Reads and validates in this thread (the worker's body, and the fallback when none can start). */
export async function readAgentConfig(req: AgentConfigRequest): Promise<AgentConfig> {
  const { loadConfig } = await import('./schema.js');
  const loaded = loadConfig(req.file);
  const config = req.bus ? await withBusFlag(loaded, req.bus) : loaded;
  const dataDir = req.data ?? config.data ?? req.defaultData;
  const enrolFile = join(agentDir(dataDir), AGENT_FILES.config);
  const enrol = existsSync(enrolFile) ? await readEnrolment(enrolFile) : undefined;
  return { config, dataDir, ...(enrol ? { enrol } : {}) };
}

/** `--bus URL`: replaces `bus.type`/`bus.url`, keeping the section's credentials and TLS. */
async function withBusFlag<T extends { bus?: unknown; file?: string }>(cfg: T, url: string): Promise<T> {
  const [{ busConfigSchema }, { busFromFlag }] = await Promise.all([
    import('../bus/config.js'),
    import('../bus/urls.js'),
  ]);
  const r = busConfigSchema.safeParse(busFromFlag(cfg.bus, url));
  if (!r.success) throw new ConfigError(r.error.issues[0]!.message, { key: '--bus' });
  return { ...cfg, bus: r.data };
}

interface SentError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  line?: number;
  key?: string;
  stack?: string;
}

type Answer = { ok: true; value: AgentConfig } | { ok: false; error: SentError };

/**
 * {@link readAgentConfig} in a short-lived worker thread. The YAML parser, the schema library and
 * every section's schema cost an agent ≈ 15 MB of resident memory for as long as it runs when
 * loaded here, for a check made once at start (ADR 0039). The answer is plain data; an error
 * comes back as the same error (class, code, message: file, line and key), so the operator sees
 * exactly what an in-process check prints.
 */
export async function loadAgentConfig(req: AgentConfigRequest): Promise<AgentConfig> {
  const body = new URL('./agent-config-worker.js', import.meta.url);
  // Under the test runner the sources are TypeScript, which a worker thread cannot load.
  if (!existsSync(fileURLToPath(body))) return readAgentConfig(req);
  let answer: Answer;
  try {
    answer = await new Promise<Answer>((resolve, reject) => {
      const worker = new Worker(body, { workerData: req, execArgv: [] });
      // The thread's freed memory stays in its malloc arena until trimmed.
      worker.once('exit', releaseFreedMemory);
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`config worker exited (${code})`)));
    });
  } catch {
    // No thread to be had (or it died): the same check, here.
    return readAgentConfig(req);
  }
  if (answer.ok) return answer.value;
  throw rebuilt(answer.error);
}

function rebuilt(e: SentError): Error {
  let err: Error;
  if (e.name === 'ConfigError') {
    // The message already carries "file:line: key: " in front; the parts are kept as fields too.
    const where = { file: e.file, line: e.line, key: e.key };
    const loc = [e.file, e.line].filter((x) => x !== undefined).join(':');
    const prefix = `${loc ? `${loc}: ` : ''}${e.key ? `${e.key}: ` : ''}`;
    err = new ConfigError(e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message, where);
  } else if (e.code !== undefined && e.name === 'RampartError') err = new RampartError(e.code, e.message);
  else err = Object.assign(new Error(e.message), { name: e.name });
  if (e.stack) err.stack = e.stack;
  return err;
}

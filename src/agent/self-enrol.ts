import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RampartError } from '../core/errors.js';
import { requestJson, Unreachable } from '../hub/http-json.js';
import { AGENT_FILES, agentDir } from './files.js';
import { joinFleet } from './join.js';

/** A node name derived from the host name, valid as an envelope sender and a topic level. */
export function localNodeName(): string {
  const h = hostname()
    .split('.')[0]!
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return h.slice(0, 64) || 'local';
}

/**
 * `rampart up` runs an agent next to its hub: the first start enrols it like any other server
 * (`nodes add` + `join` through the API with the admin token), later starts reuse agent.yaml.
 */
export async function ensureLocalEnrolment(opts: {
  dataDir: string;
  hubUrl: string;
  adminToken: string;
  name?: string;
}): Promise<{ name: string; enrolled: boolean }> {
  const name = opts.name ?? localNodeName();
  if (existsSync(join(agentDir(opts.dataDir), AGENT_FILES.config))) return { name, enrolled: false };
  const call = async (method: string, path: string, body?: unknown) => {
    try {
      const res = await requestJson(opts.hubUrl, method, path, {
        token: opts.adminToken,
        body: body ? JSON.stringify(body) : undefined,
        timeoutMs: 10_000,
      });
      return { status: res.status, json: (res.json ?? {}) as Record<string, unknown> };
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      // Undici's bare "fetch failed" names neither the hub nor the reason.
      throw new RampartError(
        'E_HTTP',
        `cannot enrol the local agent: hub ${opts.hubUrl} unreachable (${err.reason})`,
        {
          cause: err.original,
        },
      );
    }
  };
  let res = await call('POST', '/v1/nodes', { name });
  if (res.status === 409) {
    // The hub knows this name from an earlier enrolment whose local files are gone: replace it.
    await call('DELETE', `/v1/nodes/${encodeURIComponent(name)}`);
    res = await call('POST', '/v1/nodes', { name });
  }
  if (res.status >= 300 || typeof res.json.token !== 'string') {
    throw new RampartError(
      'E_HTTP',
      `cannot enrol the local agent "${name}": HTTP ${res.status} ${String(res.json.error ?? '')}`,
    );
  }
  await joinFleet({ token: res.json.token, dataDir: opts.dataDir, name });
  return { name, enrolled: true };
}

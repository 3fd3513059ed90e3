import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { RampartConfig } from '../config/schema.js';
import { ConfigError, RampartError } from '../core/errors.js';

/** File names in `DATA/agent/`. */
export const AGENT_FILES = {
  db: 'agent.db',
  key: 'node.key',
  token: 'node.token',
  config: 'agent.yaml',
} as const;

export function agentDir(dataDir: string): string {
  return join(dataDir, 'agent');
}

/** What `rampart join` learned, written to agent.yaml (no secret in it: the token is separate). */
export interface Enrolment {
  name: string;
  hub: string;
  fleet: string;
  hubPublicKey: string;
  bus: { type: string; url: string };
}

/** Writes agent.yaml and node.token atomically, owner-only like everything in the data folder. */
export function writeEnrolment(dataDir: string, e: Enrolment, nodeToken: string): string {
  const dir = agentDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const doc = {
    agent: { name: e.name, hub: e.hub, fleet: e.fleet, hubPublicKey: e.hubPublicKey },
    bus: { type: e.bus.type, url: e.bus.url, clientId: `rampart-${e.name}` },
  };
  // Loaded here only: a running agent never writes YAML, and the parser is ≈ 3 MB it would keep.
  const { stringify } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  const header = `# Written by "rampart join" on ${new Date().toISOString()}. The node token is in ${AGENT_FILES.token}.\n`;
  atomicWrite(join(dir, AGENT_FILES.config), header + stringify(doc), 0o600);
  atomicWrite(join(dir, AGENT_FILES.token), `${nodeToken}\n`, 0o600);
  return join(dir, AGENT_FILES.config);
}

/**
 * Reads and validates DATA/agent/agent.yaml. The YAML parser and the schemas are loaded here, on
 * demand: `rampart agent` does this in its short-lived config thread (ADR 0039).
 */
export async function readEnrolment(file: string): Promise<RampartConfig> {
  const [{ rampartConfigSchema }, { loadYamlFile }] = await Promise.all([
    import('../config/schema.js'),
    import('../core/config-file.js'),
  ]);
  return loadYamlFile(file, rampartConfigSchema);
}

/** Reads the node token, refusing a file others can read. */
export function readNodeToken(dataDir: string): string {
  const file = join(agentDir(dataDir), AGENT_FILES.token);
  if (!existsSync(file)) {
    throw new ConfigError(
      `this server has not joined a hub yet: run "rampart join TOKEN" (from "rampart nodes add NAME")`,
      {
        file,
      },
    );
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new RampartError('E_AUTH', `${file} is readable by group or others; run: chmod 600 ${file}`);
  }
  return readFileSync(file, 'utf8').trim();
}

function atomicWrite(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { AGENT_FILES, agentDir } from '../../agent/files.js';
import { HUB_FILES, hubDir } from '../../hub/hub-files.js';
import { type CheckResult, warn } from './check.js';
import { checkDrivers, checkModules, checkTools, checkXtRecent } from './kernel.js';
import { checkBroker, checkHub } from './network.js';
import { checkPermissions } from './permissions.js';

export interface DoctorOptions {
  dataDir: string;
  /** --hub or $RAMPART_HUB; else what `rampart join` or the local hub wrote in DATA. */
  hub?: string;
  /** --bus; else the agent's enrolment or the local hub's embedded broker. */
  bus?: string;
  /** The rampart.yaml already loaded (agent.hub, bus.url as a last resort). */
  config?: { agent?: { hub?: string }; bus?: { url?: string | string[] } };
}

/** Runs every check, in the order an operator would fix things: kernel, files, network. */
export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const where = findFleet(o);
  const results: CheckResult[] = [
    ...checkModules(),
    ...checkTools(),
    checkXtRecent(),
    ...(await checkDrivers()),
    ...checkPermissions(o.dataDir),
  ];
  if (where.hub) results.push(...(await checkHub(where.hub)));
  else
    results.push(
      warn('hub', 'no hub known', 'run "rampart join TOKEN", or pass --hub URL (or set RAMPART_HUB)'),
    );
  if (where.bus) results.push(...(await checkBroker(where.bus)));
  else results.push(warn('broker', 'no broker known', 'run "rampart join TOKEN", or pass --bus URL'));
  return results;
}

function findFleet(o: DoctorOptions): { hub?: string; bus?: string } {
  const agent = readYaml(join(agentDir(o.dataDir), AGENT_FILES.config)) as
    | { agent?: { hub?: string }; bus?: { url?: string } }
    | undefined;
  const hubInfo = readJson(join(hubDir(o.dataDir), HUB_FILES.info)) as
    | { url?: string; bus?: { url?: string } }
    | undefined;
  const cfgBus = o.config?.bus?.url;
  return {
    hub: o.hub ?? agent?.agent?.hub ?? hubInfo?.url ?? o.config?.agent?.hub,
    bus: o.bus ?? agent?.bus?.url ?? hubInfo?.bus?.url ?? (Array.isArray(cfgBus) ? cfgBus.join(',') : cfgBus),
  };
}

function readYaml(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function readJson(file: string): unknown {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** `ok    module nf_tables: loaded`, and for a problem the fix on the same line. */
export function formatResult(r: CheckResult): string {
  const fix = r.fix && r.status !== 'ok' ? `; fix: ${r.fix}` : '';
  return `${r.status.padEnd(5)} ${r.check}: ${r.detail}${fix}`;
}

import { RampartError } from '../../core/errors.js';
import { parseHeaders, toolFailure } from '../../firewall/ipset-sets.js';
import { runTool, type ToolRunner } from '../../firewall/run-tool.js';

/** What vallumd learns from libipset before it touches a set. */
export interface SetInfo {
  family: 4 | 6 | undefined;
  type: string;
  /** The set's default timeout (seconds, 0 = none) when it was created with `timeout`. */
  timeout: number | undefined;
}

/**
 * Reads one set's header (`ipset list -t NAME`). undefined = no such set: vallumd logs that and
 * carries on, and never creates sets. The default timeout is read so that an add can refresh
 * it, as vallumd's `-exist` add does (the firewall layer writes explicit timeouts).
 */
export async function readSetInfo(
  program: string,
  set: string,
  runner: ToolRunner = {},
): Promise<SetInfo | undefined> {
  const r = await runTool(program, ['list', '-t', set], runner);
  if (r.code !== 0 || r.spawnError) {
    if (/does not exist/.test(r.stderr)) return undefined;
    throw new RampartError('E_FIREWALL', toolFailure(`ipset: reading set "${set}"`, r));
  }
  const h = parseHeaders(r.stdout).get(set);
  if (!h) return undefined;
  const header = /^Header:(.*)$/m.exec(r.stdout)?.[1] ?? '';
  const t = /\btimeout (\d+)/.exec(header);
  return {
    family: h.family === 'inet' ? 4 : h.family === 'inet6' ? 6 : undefined,
    type: h.type,
    timeout: t ? Number(t[1]) : undefined,
  };
}

/**
 * A set name that can be passed to ipset as one argument and one restore-line word: printable
 * ASCII without spaces, at most 31 characters (IPSET_MAXNAMELEN), not starting with `-` (which
 * ipset would read as an option). Topics are attacker-writable, so anything else is refused.
 */
export function isSafeSetName(name: string): boolean {
  return /^[\x21-\x7e]{1,31}$/.test(name) && !name.startsWith('-');
}

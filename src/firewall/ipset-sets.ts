import { RampartError } from '../core/errors.js';
import type { ToolResult } from './run-tool.js';

/** ipset refuses larger timeouts ("out of range 0-2147483"); longer bans are clamped to it. */
export const IPSET_MAX_TIMEOUT = 2147483;

/** ipset set names are at most 31 characters (IPSET_MAXNAMELEN - 1). */
const MAX_NAME = 31;

/** The four kernel sets behind one logical set: single addresses and ranges, per family. */
export type IpsetKind = 'v4' | 'v6' | 'v4net' | 'v6net';
export type IpsetNames = Record<IpsetKind, string>;

/**
 * Kernel set names for a logical set N: `N` (hash:ip inet), `N-v6` (hash:ip inet6), `N-net`
 * (hash:net inet), `N-net-v6` (hash:net inet6). The plain name is the IPv4 address set so an
 * existing vallumd/syslog-blacklist set (`blacklist`, hash:ip inet) keeps working unchanged.
 * `overrides` maps any kind to another name (several kinds may share one hash:net set); the keys
 * are those of the nftables backend's `sets` (v4, v6, v4net, v6net).
 */
export function ipsetNames(logical: string, overrides: Partial<IpsetNames> = {}): IpsetNames {
  const names: IpsetNames = {
    v4: overrides.v4 ?? logical,
    v6: overrides.v6 ?? `${logical}-v6`,
    v4net: overrides.v4net ?? `${logical}-net`,
    v6net: overrides.v6net ?? `${logical}-net-v6`,
  };
  for (const [kind, name] of Object.entries(names)) {
    if (name.length === 0 || name.length > MAX_NAME || /\s/.test(name)) {
      throw new RampartError(
        'E_CONFIG',
        `ipset: set name "${name}" (${kind} of logical set "${logical}") must be 1 to ${MAX_NAME} characters without spaces`,
      );
    }
  }
  return names;
}

export function kindSpec(kind: IpsetKind): { type: 'hash:ip' | 'hash:net'; family: 'inet' | 'inet6' } {
  return {
    type: kind.endsWith('net') ? 'hash:net' : 'hash:ip',
    family: kind.startsWith('v6') ? 'inet6' : 'inet',
  };
}

/** What `ipset list -t` says about one set. */
export interface IpsetHeader {
  name: string;
  type: string;
  family: 'inet' | 'inet6' | undefined;
  /** The set was created with `timeout`, so elements may carry one. */
  timeout: boolean;
  maxelem: number | undefined;
  hashsize: number | undefined;
  entries: number;
}

/** Parses the plain `ipset list -t` output (all sets, headers only). */
export function parseHeaders(text: string): Map<string, IpsetHeader> {
  const out = new Map<string, IpsetHeader>();
  let cur: IpsetHeader | undefined;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (key === 'Name') {
      cur = {
        name: value,
        type: '',
        family: undefined,
        timeout: false,
        maxelem: undefined,
        hashsize: undefined,
        entries: 0,
      };
      out.set(value, cur);
    } else if (!cur) {
    } else if (key === 'Type') {
      cur.type = value;
    } else if (key === 'Header') {
      const words = value.split(/\s+/);
      const at = (w: string) => {
        const i = words.indexOf(w);
        return i >= 0 ? words[i + 1] : undefined;
      };
      const family = at('family');
      cur.family = family === 'inet' || family === 'inet6' ? family : undefined;
      cur.timeout = words.includes('timeout');
      const maxelem = at('maxelem');
      cur.maxelem = maxelem === undefined ? undefined : Number(maxelem);
      const hashsize = at('hashsize');
      cur.hashsize = hashsize === undefined ? undefined : Number(hashsize);
    } else if (key === 'Number of entries') {
      cur.entries = Number(value);
    }
  }
  return out;
}

/** Turns a failed ipset run into one sentence that names the program problem, if that is what it was. */
export function toolFailure(what: string, r: ToolResult): string {
  if (r.spawnError?.code === 'ENOENT')
    return `${what}: the ipset program was not found (install the ipset package)`;
  if (r.spawnError) return `${what}: could not run ipset: ${r.spawnError.message}`;
  if (r.code === null) return `${what}: ipset timed out`;
  const msg = r.stderr.trim().replace(/^ipset v[\d.]+: /, '') || `exit code ${r.code}`;
  if (/Operation not permitted|Permission denied/.test(msg))
    return `${what}: permission denied (ipset needs root or CAP_NET_ADMIN): ${msg}`;
  if (
    /Kernel error received: .*(protocol|Address family)/i.test(msg) ||
    /Cannot open session to kernel/.test(msg)
  ) {
    return `${what}: the ip_set kernel module is not available: ${msg}`;
  }
  return `${what}: ${msg}`;
}

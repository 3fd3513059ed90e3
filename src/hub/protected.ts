import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type Target, tryParseTarget } from '../core/address.js';
import { Allowlist } from '../core/allowlist.js';
import { RampartError } from '../core/errors.js';

/**
 * Addresses the hub refuses to ban, because a ban covering one (the address, its `::ffff:` form,
 * a range around it) cuts agents off from the fleet and from the unban that would lift it:
 *  - the hub's own API and broker addresses: always refused, whoever asks;
 *  - this machine's interface addresses and the enrolled nodes' addresses as last seen by the
 *    hub: refused unless the operator passes `force` (a node may really be compromised).
 * Reports (from nodes) never carry `force`.
 */
/** URL settings as given: a URL, a comma-separated list of them, or an array (bus URLs for clusters). */
export function splitUrls(urls: Array<string | string[] | undefined>): string[] {
  return urls
    .flatMap((u) => (u === undefined ? [] : Array.isArray(u) ? u : u.split(',')))
    .map((u) => u.trim());
}

export class ProtectedAddresses {
  private hard = new Allowlist();
  private interfaces = new Allowlist();
  private readonly nodes = new Map<string, string>();
  private nodeList: Allowlist | null = null;

  /** The hub's API and broker hosts (URLs or hosts); names that are not addresses are skipped. */
  setHub(hosts: Array<string | string[] | undefined>, withInterfaces = true): void {
    const list = new Allowlist();
    for (const h of splitUrls(hosts)) {
      const t = hostTarget(h);
      if (t) list.add(t);
    }
    this.hard = list;
    this.interfaces = new Allowlist(
      Object.values(withInterfaces ? networkInterfaces() : {})
        .flatMap((l) => l ?? [])
        .filter((a) => !a.internal)
        .map((a) => a.address.split('%')[0]!),
    );
  }

  /** Remembers the address a node last called from (an HTTP request with its token). */
  noteNode(name: string, address: string | undefined): void {
    if (!address || this.nodes.get(name) === address) return;
    if (!tryParseTarget(address)) return;
    this.nodes.set(name, address);
    this.nodeList = null;
  }

  forgetNode(name: string): void {
    if (this.nodes.delete(name)) this.nodeList = null;
  }

  /** Throws E_PROTECTED when `t` covers a protected address (soft ones only without `force`). */
  assertAllowed(t: Target, force = false): void {
    const why = this.why(t, force);
    if (why) throw new RampartError('E_PROTECTED', why);
  }

  /** Why `t` may not be banned, or undefined. */
  why(t: Target, force = false): string | undefined {
    const hub = this.hard.match(t);
    if (hub !== undefined)
      return `${t.text} covers the hub or its broker (${hub}); agents would lose the hub`;
    if (force) return undefined;
    const own = this.interfaces.match(t);
    if (own !== undefined)
      return `${t.text} covers an address of the hub's machine (${own}); pass force to ban it anyway`;
    const node = this.nodesAllowlist().match(t);
    if (node !== undefined) {
      const name = [...this.nodes].find(([, a]) => tryParseTarget(a)?.text === node)?.[0];
      return `${t.text} covers enrolled node ${name ?? '?'} (${node}); pass force to ban it anyway`;
    }
    return undefined;
  }

  private nodesAllowlist(): Allowlist {
    this.nodeList ??= new Allowlist([...this.nodes.values()]);
    return this.nodeList;
  }
}

function hostTarget(h: string | undefined): Target | undefined {
  if (!h) return undefined;
  let host = h;
  if (!isIP(h)) {
    try {
      host = new URL(h).hostname;
    } catch {
      return undefined;
    }
  }
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (host === '0.0.0.0' || host === '::') return undefined;
  return isIP(host) ? (tryParseTarget(host) ?? undefined) : undefined;
}

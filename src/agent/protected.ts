import { isIP } from 'node:net';
import { tryParseTarget } from '../core/address.js';
import { Allowlist } from '../core/allowlist.js';
import type { Logger } from '../core/logger.js';
import { splitUrls } from '../hub/protected.js';

/**
 * The addresses an agent must never ban: those of its hub(s) and broker. A ban covering one (the
 * address itself, its `::ffff:` form, a range around it) would cut the agent off from the fleet,
 * and so from the unban that would lift it. Names are resolved once at start; a name that does
 * not resolve is logged and skipped (the agent still starts: the bus may come later).
 */
export async function protectedAddresses(
  urls: Array<string | string[] | undefined>,
  log: Logger,
): Promise<Allowlist> {
  const list = new Allowlist();
  for (const url of splitUrls(urls)) {
    const host = hostOf(url);
    if (!host) continue;
    const addrs = isIP(host) ? [host] : await resolve(host, log);
    for (const a of addrs) {
      const t = tryParseTarget(a);
      if (t) list.add(t);
    }
  }
  return list;
}

function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const h = new URL(url).hostname;
    // URL keeps IPv6 literals in brackets.
    return h.startsWith('[') ? h.slice(1, -1) : h || undefined;
  } catch {
    return undefined;
  }
}

async function resolve(host: string, log: Logger): Promise<string[]> {
  try {
    // Loaded only for a name: an agent given addresses never holds node's DNS promises module.
    const { lookup } = await import('node:dns/promises');
    return (await lookup(host, { all: true })).map((r) => r.address);
  } catch (err) {
    log.warn(
      { host, err: (err as Error).message },
      'cannot resolve the hub or broker name to protect it from bans',
    );
    return [];
  }
}

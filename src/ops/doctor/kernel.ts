import { existsSync, readFileSync } from 'node:fs';
import { which } from '../../firewall/create.js';
import { type DriverKind, LibraryDriver } from '../../firewall/driver.js';
import { type CheckResult, ok, warn } from './check.js';

/** The modules the backends need: nftables, ipset, xt_recent (banban) and conntrack. */
export const KERNEL_MODULES = ['nf_tables', 'ip_set', 'xt_recent', 'nf_conntrack'] as const;

const TOOLS: Array<{ program: string; pkg: string; for: string }> = [
  { program: 'nft', pkg: 'nftables', for: 'the nftables backend' },
  { program: 'ipset', pkg: 'ipset', for: 'the ipset backend' },
  { program: 'iptables', pkg: 'iptables', for: 'ipset and xt_recent rules' },
  { program: 'ip6tables', pkg: 'iptables', for: 'IPv6 ipset and xt_recent rules' },
  { program: 'conntrack', pkg: 'conntrack', for: 'cutting a banned address’s open connections' },
];

/**
 * A module counts as present when /proc/modules lists it or /sys/module has it (built into the
 * kernel). Missing is only a warning: nft, ipset and iptables load them on first use when allowed.
 */
export function checkModules(opts: { procModules?: string; sysModule?: string } = {}): CheckResult[] {
  const procFile = opts.procModules ?? '/proc/modules';
  const sys = opts.sysModule ?? '/sys/module';
  let loaded = new Set<string>();
  let listed = true;
  try {
    loaded = new Set(
      readFileSync(procFile, 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[0]!),
    );
  } catch {
    // No /proc/modules (a container, a kernel without modules): /sys/module alone decides.
    listed = false;
  }
  return KERNEL_MODULES.map((m) =>
    loaded.has(m) || existsSync(`${sys}/${m}`)
      ? ok(`module ${m}`, 'loaded')
      : warn(
          `module ${m}`,
          listed
            ? 'not loaded (the kernel may load it on first use)'
            : `not in ${sys}, and ${procFile} is not readable here: cannot tell (a container?)`,
          `modprobe ${m}; to load it at boot: echo ${m} > /etc/modules-load.d/rampart-${m}.conf`,
        ),
  );
}

export function checkTools(find: (p: string) => string | undefined = which): CheckResult[] {
  return TOOLS.map((t) => {
    const path = find(t.program);
    return path
      ? ok(`program ${t.program}`, path)
      : warn(`program ${t.program}`, `not found (needed for ${t.for})`, `apt install ${t.pkg}`);
  });
}

export function checkXtRecent(dir = '/proc/net/xt_recent'): CheckResult {
  return existsSync(dir)
    ? ok('xt_recent', `${dir} is there`)
    : warn(
        'xt_recent',
        `${dir} is missing (only the xt_recent backend needs it)`,
        'modprobe xt_recent, then add an iptables rule with "-m recent --name NAME"',
      );
}

/** Whether libnftables/libipset load in-process (src/firewall/driver.ts), or spawning is the fallback. */
export async function checkDrivers(): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const [tool, lib, pkg] of [
    ['nft', 'libnftables', 'libnftables1'],
    ['ipset', 'libipset', 'libipset13'],
  ] as const) {
    let kind: DriverKind = 'spawn';
    let why = '';
    try {
      const d = await LibraryDriver.open(tool);
      kind = d.kind;
      await d.close();
    } catch (err) {
      why = (err as Error).message;
    }
    out.push(
      kind === 'library'
        ? ok(`driver ${tool}`, `${lib} loads in-process`)
        : warn(
            `driver ${tool}`,
            `${lib} does not load (${why.slice(0, 200)}); every commit spawns ${tool} instead`,
            `apt install ${pkg}`,
          ),
    );
  }
  return out;
}

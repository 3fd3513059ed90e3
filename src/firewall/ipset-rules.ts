import { RampartError } from '../core/errors.js';
import { type IpsetKind, type IpsetNames, kindSpec } from './ipset-sets.js';
import { runTool, type ToolRunner } from './run-tool.js';

/**
 * The ipset backend fills sets; something must drop what they hold. These are the rules
 * `rampart firewall init --backend ipset --create` adds (and `deinit` removes): one per kernel
 * set, at the top of INPUT, iptables for the IPv4 sets and ip6tables for the IPv6 ones.
 */
export interface IpsetRule {
  tool: 'iptables' | 'ip6tables';
  set: string;
  /** hash:ip or hash:net, inet or inet6: what `ipset create` needs. */
  type: string;
  family: 'inet' | 'inet6';
}

export function ipsetRules(names: IpsetNames): IpsetRule[] {
  const seen = new Set<string>();
  const out: IpsetRule[] = [];
  for (const kind of ['v4', 'v4net', 'v6', 'v6net'] as IpsetKind[]) {
    const set = names[kind];
    if (seen.has(set)) continue;
    seen.add(set);
    const { type, family } = kindSpec(kind);
    out.push({ tool: family === 'inet' ? 'iptables' : 'ip6tables', set, type, family });
  }
  return out;
}

const match = (set: string) => ['INPUT', '-m', 'set', '--match-set', set, 'src', '-j', 'DROP'];

/** The command an operator types to add the rule by hand. */
export function ruleCommand(r: IpsetRule): string {
  return `${r.tool} -I ${match(r.set).join(' ')}`;
}

export function setCommand(r: IpsetRule): string {
  return `ipset create ${r.set} ${r.type} family ${r.family} timeout 0`;
}

async function xtables(r: IpsetRule, op: '-C' | '-I' | '-D', runner: ToolRunner) {
  // -w: wait for the xtables lock instead of failing when another program holds it.
  return runTool(r.tool, ['-w', op, ...match(r.set)], runner);
}

/** The rules not in place yet (`-C` fails for them). */
export async function missingRules(rules: IpsetRule[], runner: ToolRunner = {}): Promise<IpsetRule[]> {
  const out: IpsetRule[] = [];
  for (const r of rules) if ((await xtables(r, '-C', runner)).code !== 0) out.push(r);
  return out;
}

/** Adds each missing rule once; running it again adds nothing. Returns the rules added. */
export async function ensureRules(rules: IpsetRule[], runner: ToolRunner = {}): Promise<IpsetRule[]> {
  const added: IpsetRule[] = [];
  for (const r of await missingRules(rules, runner)) {
    const res = await xtables(r, '-I', runner);
    if (res.code !== 0) {
      const why = res.spawnError ? `cannot run ${r.tool} (${res.spawnError.code})` : res.stderr.trim();
      throw new RampartError('E_FIREWALL', `ipset: adding the rule "${ruleCommand(r)}" failed: ${why}`);
    }
    added.push(r);
  }
  return added;
}

/** Removes every copy of each rule (an operator may have added one by hand too). */
export async function removeRules(rules: IpsetRule[], runner: ToolRunner = {}): Promise<IpsetRule[]> {
  const removed: IpsetRule[] = [];
  for (const r of rules) {
    let n = 0;
    // Bounded: a rule that -D cannot remove must not loop forever.
    while (n < 100 && (await xtables(r, '-C', runner)).code === 0) {
      if ((await xtables(r, '-D', runner)).code !== 0) break;
      n++;
    }
    if (n > 0) removed.push(r);
  }
  return removed;
}

/** The sets of `rules` that do not exist (`ipset list -n`). */
export async function missingSets(
  rules: IpsetRule[],
  runner: ToolRunner = {},
  program = 'ipset',
): Promise<IpsetRule[]> {
  const res = await runTool(program, ['list', '-n'], runner);
  if (res.code !== 0)
    throw new RampartError('E_FIREWALL', `ipset: listing sets failed: ${res.stderr.trim()}`);
  const have = new Set(res.stdout.split('\n').map((l) => l.trim()));
  return rules.filter((r) => !have.has(r.set));
}

/** Destroys the sets (after their rules are gone: the kernel refuses a set in use). */
export async function destroySets(
  rules: IpsetRule[],
  runner: ToolRunner = {},
  program = 'ipset',
): Promise<string[]> {
  const gone: string[] = [];
  for (const r of rules) {
    const res = await runTool(program, ['destroy', r.set], runner);
    if (res.code === 0) gone.push(r.set);
    else if (!/does not exist/.test(res.stderr))
      throw new RampartError('E_FIREWALL', `ipset: destroying ${r.set} failed: ${res.stderr.trim()}`);
  }
  return gone;
}

export interface IpsetSetupResult {
  rules: IpsetRule[];
  /** Rules added now (create). */
  added: IpsetRule[];
  /** Commands the operator still has to run (no create): missing sets, then missing rules. */
  todo: string[];
}

/**
 * `firewall init --backend ipset`: with `create`, the rules are added (the sets exist by then:
 * the backend's own init created them); without, nothing changes and what is missing is listed.
 */
export async function ipsetSetup(o: {
  names: IpsetNames;
  create: boolean;
  runner?: ToolRunner;
  program?: string;
}): Promise<IpsetSetupResult> {
  const rules = ipsetRules(o.names);
  if (o.create) return { rules, added: await ensureRules(rules, o.runner), todo: [] };
  const sets = await missingSets(rules, o.runner, o.program);
  const missing = await missingRules(rules, o.runner);
  return { rules, added: [], todo: [...sets.map(setCommand), ...missing.map(ruleCommand)] };
}

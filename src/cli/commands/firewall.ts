import type { Command } from 'commander';
import type { Target } from '../../core/address.js';
import type { DurationSeconds } from '../../core/duration.js';
import { RampartError } from '../../core/errors.js';
import { ipsetNames } from '../../firewall/ipset-sets.js';
import type { CommitResult, Firewall } from '../../firewall/types.js';
import { action, usageError } from '../exit.js';

interface FirewallCliOptions {
  backend?: string;
  set?: string;
  for?: string;
  fromFile?: string;
  json?: boolean;
  table?: string;
  setOnly?: boolean;
  nft?: string;
  driver?: string;
  config?: string;
  strategy?: 'auto' | 'diff' | 'repair' | 'rebuild';
  create?: boolean;
}

type Verb = 'init' | 'deinit' | 'add' | 'del' | 'list' | 'flush' | 'sync';

/**
 * Changes staged before `add`/`del` commits them. Small enough that a slice's objects die young
 * (at 200,000 they outlived the young generation and V8 let the old one grow to 300 MB before
 * collecting: 425 MB peak for a million lines, 200 MB at this size), big enough that a
 * transaction's fixed cost stays small (ADR 0035).
 */
const STAGE_MAX = 20_000;

const VERBS: Array<[Verb, string]> = [
  [
    'init',
    'nftables: create the table, sets and rules; ipset: with --create the sets and iptables rules, else print the commands to add (idempotent)',
  ],
  ['deinit', 'remove what init made: the nftables table, or the ipset rules (and with --create the sets)'],
  ['add', 'ban targets (addresses or CIDR ranges) now, for --for DURATION (default permanent)'],
  ['del', 'lift bans on targets'],
  ['list', 'print what the kernel holds, with remaining time (--json for scripts)'],
  ['flush', 'empty the sets (all, or --set NAME); tables and rules stay'],
  ['sync', 'make the sets hold exactly --from-file FILE (TARGET [DURATION] lines); prints what was repaired'],
];

export function register(program: Command): void {
  const fw = program
    .command('firewall')
    .description('Drive the firewall layer directly: init, add, del, list, flush, sync')
    .addHelpText(
      'after',
      `
The backend runs in this process (root needed for nftables); without --backend rampart picks
nftables when it can and otherwise a dry-run backend that only logs. Exit codes: 0 done, 1 the
firewall refused, 2 bad arguments or targets (named in the message; nothing is applied).

Examples:
  rampart firewall add --for 1h 192.0.2.7 198.51.100.0/24 2001:db8::/64
  rampart firewall list --json
  rampart firewall sync --from-file active-bans.txt`,
    );
  for (const [verb, description] of VERBS) {
    const cmd = fw
      .command(verb)
      .description(description)
      .argument('[target...]', 'IPv4/IPv6 addresses or CIDR ranges')
      .option(
        '--backend <name>',
        'auto (nftables when possible, else dry-run), nftables, ipset, xt_recent, command, fail2ban or dry-run',
      )
      .option('--set <name>', 'logical set (default blocklist)')
      .option('--from-file <file>', 'read targets from a file, one "TARGET [DURATION]" per line (- = stdin)')
      .option('--json', 'machine-readable output')
      .option('--config <file>', 'rampart.yaml whose firewall: section configures the backend')
      .option('--table <name>', 'nftables table (default rampart)')
      .option('--set-only', "nftables: only manage the elements of the operator's own set (--table, --set)")
      .option('--nft <path>', 'the nft program')
      .option('--driver <d>', 'nftables/ipset: auto (in-process library, else spawn), library or spawn');
    if (verb === 'add') cmd.option('--for <duration>', 'ban length: 90s, 10m, 12h, 1d, 1w or permanent');
    if (verb === 'init' || verb === 'deinit')
      cmd.option(
        '--create',
        'ipset: create (deinit: destroy) the sets and the iptables/ip6tables DROP rules',
      );
    if (verb === 'sync')
      cmd.option(
        '--strategy <s>',
        'auto, diff (list and repair), repair (read the kernel, change what differs) or rebuild (atomic reload)',
      );
    cmd.action(action(async (targets: string[], opts: FirewallCliOptions) => run(verb, targets, opts)));
  }
}

async function run(verb: Verb, args: string[], opts: FirewallCliOptions): Promise<void> {
  const { parseTarget, assertBannable } = await import('../../core/address.js');
  const { parseDuration } = await import('../../core/duration.js');
  const { spoolStdin } = await import('../../firewall/target-file.js');
  const needsTargets = verb === 'add' || verb === 'del';
  if (!needsTargets && verb !== 'sync' && args.length > 0)
    throw usageError(`firewall ${verb} takes no targets`);
  if (verb === 'sync' && (args.length > 0 || !opts.fromFile))
    throw usageError('firewall sync needs --from-file FILE');
  // Everything is validated before the backend is touched: a bad target applies nothing.
  const timeout: DurationSeconds = opts.for === undefined ? null : parseDuration(opts.for, '--for');
  const items: Array<{ target: Target; timeout: DurationSeconds }> = [];
  for (const text of args) {
    const target = parseTarget(text, { hostBits: 'reject' });
    if (verb === 'add') assertBannable(target);
    items.push({ target, timeout });
  }
  // A file is read twice, never held: once here to check every line, once to apply it. Standard
  // input can be read only once: it is first copied to a private temporary file.
  const spool = opts.fromFile === '-' ? spoolStdin() : undefined;
  try {
    await runWith(verb, items, timeout, spool?.file ?? opts.fromFile, opts);
  } finally {
    spool?.remove();
  }
}

async function runWith(
  verb: Verb,
  items: Array<{ target: Target; timeout: DurationSeconds }>,
  timeout: DurationSeconds,
  fromFile: string | undefined,
  opts: FirewallCliOptions,
): Promise<void> {
  const { formatDuration } = await import('../../core/duration.js');
  const { eachTargetLine } = await import('../../firewall/target-file.js');
  const needsTargets = verb === 'add' || verb === 'del';
  const fileOpts = { bannable: verb !== 'del', label: opts.fromFile };
  let fileCount = 0;
  if (fromFile) for (const _ of eachTargetLine(fromFile, fileOpts)) fileCount++;
  const fileItems = function* () {
    for (const it of items) yield it;
    if (fromFile)
      for (const l of eachTargetLine(fromFile, fileOpts))
        yield { target: l.target, timeout: l.timeout ?? timeout };
  };
  const total = items.length + fileCount;
  if (needsTargets && total === 0)
    throw usageError(`firewall ${verb} needs at least one target or --from-file`);

  const { firewall, requested, config } = await open(opts, verb === 'list');
  if (verb === 'list' && firewall.name === 'dry-run' && requested === 'auto') {
    // The automatic fallback holds nothing: an empty list would read as "no bans in the kernel".
    const why =
      process.getuid?.() === 0 ? 'nft is not installed' : 'not running as root (use sudo, or CAP_NET_ADMIN)';
    throw new RampartError('E_FIREWALL', `firewall list: cannot read the kernel's sets: ${why}`);
  }
  await firewall.init();
  const set = opts.set;
  const out = (obj: unknown, text: string) =>
    process.stdout.write(opts.json ? `${JSON.stringify(obj)}\n` : `${text}\n`);
  switch (verb) {
    case 'init': {
      // The driver is known once the backend has talked to the kernel (init does for nftables/ipset).
      const via = firewall.driver
        ? ` (${firewall.driver === 'library' ? 'in-process library' : 'spawned program'})`
        : '';
      if (firewall.name === 'ipset') {
        const { ipsetSetup, ruleCommand } = await import('../../firewall/ipset-rules.js');
        const r = await ipsetSetup({ ...ipsetTarget(config, set), create: opts.create === true });
        const text = opts.create
          ? `ipset: sets ${r.rules.map((x) => x.set).join(', ')} ready${via}; ${r.added.length ? `added ${r.added.map(ruleCommand).join('; ')}` : 'rules already in place'}`
          : r.todo.length > 0
            ? `ipset: rampart fills the sets but creates neither them nor the rules that drop their members.\nRun these (or: rampart firewall init --backend ipset --create):\n${r.todo.map((c) => `  ${c}`).join('\n')}`
            : `ipset: sets and rules in place${via}`;
        out(
          {
            backend: firewall.name,
            ok: true,
            driver: firewall.driver,
            added: r.added.map(ruleCommand),
            todo: r.todo,
          },
          text,
        );
        break;
      }
      out({ backend: firewall.name, ok: true, driver: firewall.driver }, `${firewall.name}: ready${via}`);
      break;
    }
    case 'deinit': {
      if (firewall.name === 'ipset') {
        const { ipsetRules, removeRules, destroySets, ruleCommand } = await import(
          '../../firewall/ipset-rules.js'
        );
        const { names, runner, program } = ipsetTarget(config, set);
        const rules = ipsetRules(names);
        const removed = await removeRules(rules, runner);
        const destroyed = opts.create ? await destroySets(rules, runner, program) : [];
        out(
          { backend: firewall.name, removed: removed.map(ruleCommand), destroyed },
          `ipset: removed ${removed.length} rule(s)${opts.create ? `, destroyed ${destroyed.length} set(s)` : ' (sets kept; --create destroys them)'}`,
        );
      } else if (hasDestroy(firewall)) {
        await firewall.destroy();
        out({ backend: firewall.name, destroyed: true }, `${firewall.name}: removed`);
      } else throw usageError(`firewall deinit: the ${firewall.name} backend creates nothing to remove`);
      break;
    }
    case 'add':
    case 'del': {
      // Committed in slices of STAGE_MAX: a million lines never sit staged as objects at once.
      const r = { added: 0, deleted: 0 };
      const refusedAll: NonNullable<CommitResult['refused']> = [];
      const commit = async () => {
        const c = await firewall.commit();
        r.added += c.added;
        r.deleted += c.deleted;
        if (c.refused) refusedAll.push(...c.refused);
      };
      // Pipelined: the next slice is read and staged while the previous one is in the kernel
      // (the library runs in its own thread), one commit in flight at a time.
      let staged = 0;
      let inFlight: Promise<void> = Promise.resolve();
      for (const it of fileItems()) {
        if (verb === 'add') firewall.add(it.target, it.timeout, set);
        else firewall.delete(it.target, set);
        if (++staged >= STAGE_MAX) {
          await inFlight;
          inFlight = commit();
          staged = 0;
        }
      }
      await inFlight;
      if (firewall.pending() > 0) await commit();
      const refused = refusedAll.length > 0 ? refusedAll : undefined;
      const refusedText = (refused ?? [])
        .map((x) => `\n  refused ${x.target.text} (set ${x.set}): ${x.reason}`)
        .join('');
      out(
        {
          backend: firewall.name,
          ...r,
          ...(refused
            ? { refused: refused.map((x) => ({ target: x.target.text, set: x.set, reason: x.reason })) }
            : {}),
        },
        `${firewall.name}: ${verb === 'add' ? `added ${r.added}` : `deleted ${r.deleted}`}${refusedText}`,
      );
      if (refused) process.exitCode = 1;
      break;
    }
    case 'list': {
      const entries = await firewall.list(set);
      if (opts.json) {
        const rows = entries.map((e) => ({
          target: e.target.text,
          family: e.target.family,
          set: e.set,
          timeout: e.timeout,
        }));
        process.stdout.write(`${JSON.stringify(rows)}\n`);
      } else {
        for (const e of entries)
          process.stdout.write(`${e.target.text}\t${e.set}\t${formatDuration(e.timeout)}\n`);
      }
      break;
    }
    case 'flush': {
      if (firewall.flush) await firewall.flush(set);
      else {
        for (const e of await firewall.list(set)) firewall.delete(e.target, e.set);
        await firewall.commit();
      }
      out(
        { backend: firewall.name, flushed: set ?? 'all' },
        `${firewall.name}: flushed ${set ?? 'all sets'}`,
      );
      break;
    }
    case 'sync': {
      const { sync } = await import('../../firewall/reconcile.js');
      const desired = {
        count: total,
        *entries() {
          for (const it of fileItems())
            yield { target: it.target, timeout: it.timeout, set: set ?? 'blocklist' };
        },
      };
      // A one-off command keeps the atomic reload for big sets: a repair would first read a big
      // kernel set whole (≈ 50 s of kernel CPU for a million; ADR 0043). `--strategy repair` asks.
      const strategy = opts.strategy === 'auto' || !opts.strategy ? 'auto-rebuild' : opts.strategy;
      const r = await sync(
        firewall,
        desired,
        strategy === 'auto-rebuild' ? { strategy: 'auto', repairAuto: false } : { strategy },
      );
      out(
        {
          backend: firewall.name,
          strategy: r.strategy,
          added: r.added.map((e) => e.target.text),
          deleted: r.deleted.map((e) => e.target.text),
          loaded: r.loaded,
          counts: r.counts,
        },
        r.strategy === 'rebuild'
          ? `${firewall.name}: rebuilt with ${r.loaded} elements`
          : `${firewall.name}: repaired ${r.counts.added} missing, removed ${r.counts.deleted} stray${r.counts.renewed > 0 ? `, renewed ${r.counts.renewed}` : ''}`,
      );
      break;
    }
  }
  await firewall.shutdown();
}

async function open(
  opts: FirewallCliOptions,
  quietFallback: boolean,
): Promise<{ firewall: Firewall; requested: string; config: Record<string, unknown> }> {
  const { createFirewall, firewallConfigSchema } = await import('../../firewall/create.js');
  const { createLogger } = await import('../../core/logger.js');
  let config: Record<string, unknown> = {};
  if (opts.config) {
    const { loadYamlFile } = await import('../../core/config-file.js');
    const { z } = await import('zod');
    const file = loadYamlFile(opts.config, z.looseObject({ firewall: firewallConfigSchema.optional() }));
    config = { ...(file.firewall ?? {}) };
  }
  if (opts.backend) config.backend = opts.backend;
  if (opts.driver) config.driver = opts.driver;
  const nft = { ...((config.nftables as Record<string, unknown> | undefined) ?? {}) };
  if (opts.table) nft.table = opts.table;
  if (opts.nft) nft.nft = opts.nft;
  if (opts.setOnly) {
    if (!opts.table || !opts.set)
      throw usageError('--set-only needs --table and --set (the kernel set to fill)');
    nft.setOnly = true;
    nft.sets = { [opts.set]: { v4: opts.set, v6: opts.set } };
  }
  if (Object.keys(nft).length > 0) config.nftables = nft;
  if (opts.create)
    config.ipset = { ...((config.ipset as Record<string, unknown> | undefined) ?? {}), create: true };
  const requested = typeof config.backend === 'string' ? config.backend : 'auto';
  // Listing with the automatic fallback is refused before the dry-run warning would be printed.
  const quiet = quietFallback && requested === 'auto';
  const logger = createLogger({ stream: 'stderr', level: quiet ? 'error' : undefined });
  return { firewall: createFirewall(config, { logger }), requested, config };
}

/** The kernel sets of one logical set as the ipset backend names them, and how to run the tools. */
function ipsetTarget(config: Record<string, unknown>, set: string | undefined) {
  const ipset = (config.ipset ?? {}) as {
    defaultSet?: string;
    sets?: Record<string, Record<string, string>>;
    program?: string;
  };
  const logical = set ?? ipset.defaultSet ?? 'blocklist';
  return {
    names: ipsetNames(logical, ipset.sets?.[logical]),
    runner: { prefix: config.exec as string[] | undefined },
    program: ipset.program,
  };
}

/** nftables can delete its own table; the Firewall interface leaves that optional and unnamed. */
function hasDestroy(f: Firewall): f is Firewall & { destroy(): Promise<void> } {
  return typeof (f as { destroy?: unknown }).destroy === 'function';
}

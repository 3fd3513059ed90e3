import { z } from 'zod';
import { parseTarget } from '../core/address.js';
import { loadYamlFile, parseYamlText } from '../core/config-file.js';
import { type DurationSeconds, parseDuration } from '../core/duration.js';
import { SET_NAME_RE, SET_NAME_RULE } from '../core/set-name.js';
import type { RuleSpec } from '../detect/rule.js';
import { anchorAfterHost, translateRegex } from './regex-translate.js';

export interface BanbanOptions {
  /**
   * Ban length. banban itself never ends a block (the xt_recent rule's `--seconds` does), so the
   * default is permanent: right for the xt_recent backend, give a time for nftables/ipset sets.
   */
  bantime?: DurationSeconds;
  sources?: string[];
}

/** A banban configuration as rampart rules, plus the socket banban would listen on. */
export interface BanbanConfig {
  /** The UNIX datagram socket path (`socket:`), for the source layer; undefined when absent. */
  socket: string | undefined;
  rules: RuleSpec[];
}

/** A Perl pattern that must capture the address as `(?<ip>...)`, translated to JavaScript. */
const pattern = z.string().transform((src, ctx) => {
  if (!/\(\?(?:P?<|')ip[>']/.test(src)) {
    ctx.addIssue({ code: 'custom', message: 'pattern has no named capture (?<ip>...) for the address' });
    return z.NEVER;
  }
  try {
    const js = anchorAfterHost(translateRegex(src, 'perl'));
    new RegExp(js);
    return js;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `cannot use pattern: ${(err as Error).message}` });
    return z.NEVER;
  }
});

// banban takes one pattern or a list; a single string is wrapped so errors keep their exact path.
const patterns = z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(pattern));

const network = z.string().transform((s, ctx) => {
  try {
    return parseTarget(s).text;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const seconds = z.union([z.number().positive(), z.string()]).transform((v, ctx) => {
  try {
    const s = parseDuration(v, 'interval');
    if (s !== null) return s;
    ctx.addIssue({ code: 'custom', message: 'interval must be finite' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
  return z.NEVER;
});

// banban writes 0/1 or yes/no style flags; YAML gives booleans for true/false/yes/no.
const flag = z
  .union([z.boolean(), z.literal(0), z.literal(1), z.enum(['yes', 'no', 'true', 'false'])])
  .transform((v) => v === true || v === 1 || v === 'yes' || v === 'true');

const blocktype = z
  .object({
    // xt_recent itself allows more (dots, 200 bytes), but a target is also a rampart set that
    // nftables and ipset must hold: the one set-name rule, refused here with the file and line.
    target: z.string().regex(SET_NAME_RE, `target must be a set name (${SET_NAME_RULE})`),
    // No upper bound: banban keeps only 10 hits per address, so a minocc above 10 never fired
    // there. That is a bug, not a limit to copy.
    minocc: z.number().int().positive(),
    interval: seconds,
    resetconns: flag.optional(),
    patterns,
  })
  .strict();

const schema = z.looseObject({
  socket: z.string().min(1).optional(),
  goodpatterns: patterns.optional(),
  ignorenets: z.array(network).optional(),
  blocktypes: z.record(
    z.string().regex(/^[\w.-]+$/, 'a blocktype name uses letters, digits, _ . -'),
    blocktype,
  ),
});

/** Reads a banban YAML file; errors name the file, the line and the key (`blocktypes.ssh.minocc`). */
export function loadBanbanConfig(file: string, opts: BanbanOptions = {}): BanbanConfig {
  return toRules(loadYamlFile(file, schema), file, opts);
}

export function parseBanbanConfig(text: string, file: string, opts: BanbanOptions = {}): BanbanConfig {
  return toRules(parseYamlText(text, schema, file), file, opts);
}

/**
 * One rule per blocktype: `minocc` hits within `interval` seconds ban into xt_recent table
 * `target`; every good pattern forgives (banban writes `-ip` to every target, rampart unbans in
 * every rule), `ignorenets` are never banned.
 */
function toRules(cfg: z.output<typeof schema>, file: string, opts: BanbanOptions): BanbanConfig {
  const rules = Object.entries(cfg.blocktypes).map(
    ([name, b]): RuleSpec => ({
      name,
      sources: opts.sources ?? [],
      patterns: b.patterns,
      ignore: [],
      good: cfg.goodpatterns ?? [],
      maxretry: b.minocc,
      findtime: b.interval,
      bantime: opts.bantime !== undefined ? opts.bantime : null,
      ignoreNets: cfg.ignorenets ?? [],
      set: b.target,
      resetConnections: b.resetconns ?? false,
      reason: name,
      origin: `${file} blocktypes.${name}`,
    }),
  );
  return { socket: cfg.socket, rules };
}

/**
 * Address placeholders in rule patterns and the regex text they expand to. Only the first
 * placeholder of a pattern captures (as group `ip`, or `ipb` for the bracketed `[addr]` form);
 * later ones match without capturing. The expansions are deliberately loose: every capture is
 * re-validated by core/address, so a hostname (`<HOST>` matches one, as in fail2ban) or a
 * malformed address is simply no match. rampart never resolves DNS.
 */
const V4 = String.raw`\d{1,3}(?:\.\d{1,3}){3}`;
const V6 = '[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*';
const ADDR_CHARS = '[0-9A-Fa-f:.]+';

type Expansion = (capture: boolean) => string;

const named = (capture: boolean, name: string, body: string) =>
  capture ? `(?<${name}>${body})` : `(?:${body})`;

const EXPANSIONS: Record<string, Expansion> = {
  '<HOST>': (c) => `(?:\\[${named(c, 'ipb', ADDR_CHARS)}\\]|${named(c, 'ip', String.raw`[\w.:-]+`)})`,
  '<ADDR>': (c) => `(?:\\[${named(c, 'ipb', ADDR_CHARS)}\\]|${named(c, 'ip', ADDR_CHARS)})`,
  '{IP_NUMBER}': (c) => named(c, 'ip', ADDR_CHARS),
  '<IP4>': (c) => named(c, 'ip', V4),
  '<IP6>': (c) => `(?:\\[${named(c, 'ipb', V6)}\\]|${named(c, 'ip', V6)})`,
};

const PLACEHOLDER = /<HOST>|<ADDR>|<IP4>|<IP6>|\{IP_NUMBER\}/g;

/** Group names that carry the address (fail2ban's `ip4`/`ip6`/`fid` styles included). */
export const ADDRESS_GROUPS = ['ip', 'ipb', 'ip4', 'ip6', 'addr', 'host'] as const;

/** Group names that never become fields of a match. */
const INTERNAL_GROUPS = new Set<string>([...ADDRESS_GROUPS, 'dns', 'content']);

export function isInternalGroup(name: string): boolean {
  return INTERNAL_GROUPS.has(name);
}

/**
 * Expands placeholders and Python-style `(?P<name>` groups. Returns the JavaScript source and
 * whether the pattern can capture an address at all.
 */
export function expandPlaceholders(pattern: string): { source: string; hasAddress: boolean } {
  let source = pattern.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  let hasAddress = /\(\?<(?:ip|ip4|ip6|addr|host)>/.test(source);
  source = source.replace(PLACEHOLDER, (tag) => {
    const capture = !hasAddress;
    hasAddress = true;
    return EXPANSIONS[tag]!(capture);
  });
  return { source, hasAddress };
}

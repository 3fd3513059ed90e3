/**
 * Address placeholders in rule patterns and the regex text they expand to. Every placeholder of
 * a pattern captures: the first as group `ip`, later ones as `ip_2`, `ip_3`, ... (Node 20 refuses
 * duplicate group names), and the engine takes the first of them that took part in the match, so
 * `\[(?:IPv6:<IP6>|<IP4>)\]` yields whichever address the line holds.
 *
 * The expansions follow fail2ban's shapes: `<ADDR>` is `\[?(IPv4|IPv6)\]?`, `<HOST>` is that or a
 * host name (which captures nothing: rampart never resolves DNS, so a host name is no match). They
 * stop where an address ends, so `<HOST>(:\d+)?` and `<HOST>:<port>` leave the port alone, yet
 * use no lookarounds, which V8's linear-time engine cannot run. The IPv4 part takes whole digit
 * runs (`\d+`, not `\d{1,3}`): `1.2.3.4567` is captured whole and refused rather than cut to
 * `1.2.3.456`. Captures are still validated by core/address.
 */
const V4 = String.raw`\d+(?:\.\d+){3}`;
// At least two colons; a dotted-quad tail covers IPv4-mapped and -compatible forms. Each hex
// group is at most 4 digits, so a `:51380` port is not swallowed once the pattern needs it.
// Written `H?H?H?H?` because V8's linear engine refuses `(?::H{0,4}){2,7}` as too large.
const H4 = '[0-9A-Fa-f]?'.repeat(4);
const V6 = String.raw`${H4}(?::${H4}){2,7}(?:\.\d+\.\d+\.\d+)?`;
const DNS = String.raw`[\w.-]*\w`;

type Expansion = (group: string | null) => string;

const cap = (group: string | null, body: string) => (group === null ? `(?:${body})` : `(?<${group}>${body})`);

const EXPANSIONS: Record<string, Expansion> = {
  '<HOST>': (g) => `(?:\\[?${cap(g, `${V4}|${V6}`)}\\]?|${DNS})`,
  '<ADDR>': (g) => `\\[?${cap(g, `${V4}|${V6}`)}\\]?`,
  '{IP_NUMBER}': (g) => cap(g, `${V4}|${V6}`),
  '<IP4>': (g) => cap(g, V4),
  '<IP6>': (g) => `\\[?${cap(g, V6)}\\]?`,
};

const PLACEHOLDER = /<HOST>|<ADDR>|<IP4>|<IP6>|\{IP_NUMBER\}/g;

/** Group names that carry the address (fail2ban's `ip4`/`ip6`/`fid` styles included). */
export const ADDRESS_GROUPS = ['ip', 'ipb', 'ip4', 'ip6', 'addr', 'host'] as const;

const NUMBERED = /^ip_\d+$/;

/** Whether a named group holds an address: the names above or a numbered placeholder (`ip_2`). */
export function isAddressGroup(name: string): boolean {
  return (ADDRESS_GROUPS as readonly string[]).includes(name) || NUMBERED.test(name);
}

/** Group names that never become fields of a match. */
const INTERNAL_GROUPS = new Set<string>([...ADDRESS_GROUPS, 'dns', 'content']);

export function isInternalGroup(name: string): boolean {
  return INTERNAL_GROUPS.has(name) || NUMBERED.test(name);
}

/**
 * Expands placeholders and Python-style `(?P<name>` groups. Returns the JavaScript source and
 * whether the pattern can capture an address at all. A pattern with its own named address group
 * (`(?<ip>...)`) keeps it as the only capture: its placeholders then match without capturing.
 */
export function expandPlaceholders(pattern: string): { source: string; hasAddress: boolean } {
  let source = pattern.replace(/\(\?P<(\w+)>/g, '(?<$1>').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  const own = /\(\?<(?:ip|ip4|ip6|addr|host)>/.test(source);
  let n = 0;
  source = source.replace(PLACEHOLDER, (tag) => {
    n++;
    const group = own ? null : n === 1 ? 'ip' : `ip_${n}`;
    return EXPANSIONS[tag]!(group);
  });
  return { source, hasAddress: own || n > 0 };
}

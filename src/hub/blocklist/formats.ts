import { remainingSeconds } from '../../core/decision.js';
import { formatDuration } from '../../core/duration.js';

export const BLOCKLIST_FORMATS = ['txt', 'json', 'csv', 'mikrotik'] as const;
export type BlocklistFormat = (typeof BLOCKLIST_FORMATS)[number];

/** One line of a blocklist. Merged CIDRs (`?aggregate=1`) carry no set, origin, rule or reason. */
export interface BlocklistEntry {
  target: string;
  family: 4 | 6;
  expiresAt: number | null;
  set?: string;
  origin?: string;
  rule?: string;
  reason?: string;
}

/** Writes a blocklist as text pieces: a head, one piece per entry, a tail. */
export interface BlocklistWriter {
  readonly contentType: string;
  /** Whether one target banned in several sets is one entry (what a router wants). */
  readonly oneEntryPerTarget: boolean;
  head(): string;
  entry(e: BlocklistEntry): string;
  tail(): string;
}

export interface WriterOptions {
  /** The decision log head the list reflects (JSON and the MikroTik script say it). */
  head: number;
  /** Times the MikroTik timeouts count from (epoch ms). */
  now: number;
  /** MikroTik address-list name. */
  list: string;
  /** Only this family (MikroTik: only that family's old entries are removed). */
  family?: 4 | 6;
}

/**
 * RouterOS keeps an address-list timeout up to 35w3d13:13:56 (2^31 - 1 hundredths of a second);
 * a longer ban is sent with the longest timeout and renewed by the next pull.
 */
const ROUTEROS_MAX_TIMEOUT = 21_474_836;
const CSV_HEADER = 'target,family,set,expires_at,origin,rule,reason\n';

export function blocklistWriter(format: BlocklistFormat, o: WriterOptions): BlocklistWriter {
  switch (format) {
    case 'txt':
      return {
        contentType: 'text/plain; charset=utf-8',
        oneEntryPerTarget: true,
        head: () => '',
        entry: (e) => `${e.target}\n`,
        tail: () => '',
      };
    case 'json': {
      let first = true;
      return {
        contentType: 'application/json; charset=utf-8',
        oneEntryPerTarget: false,
        head: () => `{"head":${o.head},"items":[`,
        entry: (e) => {
          const text = (first ? '\n' : ',\n') + JSON.stringify(e);
          first = false;
          return text;
        },
        tail: () => (first ? ']}\n' : '\n]}\n'),
      };
    }
    case 'csv':
      return {
        contentType: 'text/csv; charset=utf-8',
        oneEntryPerTarget: false,
        head: () => CSV_HEADER,
        entry: (e) =>
          `${[
            e.target,
            String(e.family),
            csvField(e.set ?? ''),
            e.expiresAt === null ? '' : new Date(e.expiresAt).toISOString(),
            csvField(e.origin ?? ''),
            csvField(e.rule ?? ''),
            csvField(e.reason ?? ''),
          ].join(',')}\n`,
        tail: () => '',
      };
    case 'mikrotik':
      return mikrotikWriter(o);
  }
}

/**
 * A RouterOS script (`/import file=rampart.rsc`): it first removes the list's entries, then adds
 * every ban, so an unbanned address leaves the router at the next pull. Entries with a timeout
 * live in RAM and expire on the router by themselves; permanent bans are static entries.
 */
function mikrotikWriter(o: WriterOptions): BlocklistWriter {
  const list = routerOsString(o.list);
  const menu = { 4: '/ip firewall address-list', 6: '/ipv6 firewall address-list' } as const;
  const families = o.family ? [o.family] : ([4, 6] as const);
  return {
    contentType: 'text/plain; charset=utf-8',
    oneEntryPerTarget: true,
    head: () =>
      `# rampart blocklist at decision log head ${o.head}\n${families
        .map((f) => `${menu[f]} remove [find list=${list}]\n`)
        .join('')}`,
    entry: (e) => {
      // A bare IPv6 address is a /128 here: older RouterOS wants the prefix in that menu.
      const address = e.family === 6 && !e.target.includes('/') ? `${e.target}/128` : e.target;
      const left = remainingSeconds(e.expiresAt, o.now);
      const timeout =
        left === null ? '' : ` timeout=${routerOsDuration(Math.min(left, ROUTEROS_MAX_TIMEOUT))}`;
      return `${menu[e.family]} add list=${list} address=${address}${timeout}\n`;
    },
    tail: () => '',
  };
}

/** A quoted RouterOS string: `\`, `"`, `$` (variables) and `?` (help) escaped, control bytes as \XX. */
export function routerOsString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || ch === '"' || ch === '$' || ch === '?') out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Seconds as a RouterOS time value (`1w2d3h4m5s`, the units RouterOS reads), at least 1s. */
export function routerOsDuration(seconds: number): string {
  return formatDuration(Math.max(1, Math.ceil(seconds)));
}

/**
 * RFC 4180 quoting; a cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a
 * leading `'`, since reasons and rule names can come from log lines.
 */
function csvField(s: string): string {
  const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

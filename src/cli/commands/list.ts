import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { RampartError } from '../../core/errors.js';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions, remaining } from '../hub-client.js';

interface Page {
  items: Decision[];
  next: string | null;
  total: number;
}

type ListFlags = HubFlags & {
  json?: boolean;
  target?: string;
  origin?: string;
  rule?: string;
  set?: string;
  since?: string;
  limit?: string;
  all?: boolean;
};

const PAGE = 1000;

export function register(program: Command): void {
  hubOptions(
    program
      .command('list')
      .option(
        '--target <addr>',
        'bans overlapping this address or range (a range that covers an address is found)',
      )
      .option('--origin <name>', 'only bans from this origin (a node name, operator, api)')
      .option('--rule <name>', 'only bans from this rule')
      .option('--set <name>', 'only bans in this logical set')
      .option('--since <time>', 'only bans decided since: a duration ago (1h), an ISO date, or epoch ms')
      .option('--limit <n>', 'print at most this many bans, newest first (default 100)')
      .option('--all', 'print every matching ban (pages through the hub)')
      .option('--json', 'print {items, total} as JSON'),
  )
    .description('List the bans in force across the fleet, newest first')
    .action(
      action(async (o: ListFlags) => {
        const want = o.all ? Number.POSITIVE_INFINITY : parseLimit(o.limit);
        const client = HubClient.from(o);
        const items: Decision[] = [];
        let total = 0;
        let cursor: string | null = null;
        do {
          const q = new URLSearchParams();
          q.set('limit', String(Math.min(PAGE, want - items.length)));
          for (const k of ['target', 'origin', 'rule', 'set', 'since'] as const) {
            if (o[k] !== undefined) q.set(k, o[k]!);
          }
          if (cursor) q.set('cursor', cursor);
          const page: Page = await client.get<Page>(`/v1/bans?${q}`);
          items.push(...page.items);
          total = page.total;
          cursor = page.next;
        } while (cursor && items.length < want);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ items, total })}\n`);
          return;
        }
        if (items.length === 0) {
          process.stdout.write(total === 0 ? 'no active bans\n' : `no bans match (${total} in force)\n`);
          return;
        }
        const rows = items.map((d) => [d.target, remaining(d.expiresAt), d.set, d.origin, d.rule, d.reason]);
        let out = formatTable(['TARGET', 'EXPIRES IN', 'SET', 'ORIGIN', 'RULE', 'REASON'], rows);
        if (items.length < total) out += `(${items.length} of ${total}; --limit N or --all for more)\n`;
        process.stdout.write(out);
      }),
    );
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return 100;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw new RampartError('E_USAGE', `--limit: "${text.slice(0, 20)}" is not a positive whole number`);
  }
  return Number(text);
}

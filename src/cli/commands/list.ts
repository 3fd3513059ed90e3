import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions, remaining } from '../hub-client.js';

export function register(program: Command): void {
  hubOptions(program.command('list').option('--json', 'print {head, decisions} as JSON'))
    .description('List the bans in force across the fleet')
    .action(
      action(async (o: HubFlags & { json?: boolean }) => {
        const page = await HubClient.from(o).get<{ head: number; decisions: Decision[] }>(
          '/v1/decisions/active',
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify(page)}\n`);
          return;
        }
        if (page.decisions.length === 0) {
          process.stdout.write('no active bans\n');
          return;
        }
        const rows = page.decisions.map((d) => [
          d.target,
          remaining(d.expiresAt),
          d.set,
          d.origin,
          d.rule,
          d.reason,
        ]);
        process.stdout.write(formatTable(['TARGET', 'EXPIRES IN', 'SET', 'ORIGIN', 'RULE', 'REASON'], rows));
      }),
    );
}

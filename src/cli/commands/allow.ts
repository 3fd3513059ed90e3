import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions } from '../hub-client.js';

interface Entry {
  cidr: string;
  comment: string;
  createdAt: number;
}

export function register(program: Command): void {
  const allow = program
    .command('allow')
    .description('The fleet allowlist: addresses and ranges that are never banned');

  hubOptions(
    allow
      .command('add')
      .argument('<cidr>', 'address or CIDR range')
      .option('--comment <text>', 'why')
      .option('--force', 'allow 0.0.0.0/0 or ::/0 (which lifts every ban in the fleet)'),
  )
    .description('Never ban this range; bans in force inside it are lifted')
    .action(
      action(async (cidr: string, o: HubFlags & { comment?: string; force?: boolean }) => {
        const r = await HubClient.from(o).post<{ cidr: string; unbanned: Decision[] }>('/v1/allowlist', {
          cidr,
          ...(o.comment !== undefined ? { comment: o.comment } : {}),
          ...(o.force ? { force: true } : {}),
        });
        const lifted = r.unbanned.length ? `; lifted ${r.unbanned.map((d) => d.target).join(', ')}` : '';
        process.stdout.write(`allowlisted ${r.cidr}${lifted}\n`);
      }),
    );

  hubOptions(allow.command('remove').argument('<cidr>', 'the entry as listed'))
    .description('Remove an allowlist entry')
    .action(
      action(async (cidr: string, o: HubFlags) => {
        await HubClient.from(o).delete('/v1/allowlist', { cidr });
        process.stdout.write(`removed ${cidr} from the allowlist\n`);
      }),
    );

  hubOptions(allow.command('list').option('--json', 'print the entries as JSON'))
    .description('Show the fleet allowlist')
    .action(
      action(async (o: HubFlags & { json?: boolean }) => {
        const { entries } = await HubClient.from(o).get<{ entries: Entry[] }>('/v1/allowlist');
        if (o.json) process.stdout.write(`${JSON.stringify(entries)}\n`);
        else if (entries.length === 0) process.stdout.write('the allowlist is empty\n');
        else
          process.stdout.write(
            formatTable(
              ['CIDR', 'COMMENT'],
              entries.map((e) => [e.cidr, e.comment]),
            ),
          );
      }),
    );
}

import type { Command } from 'commander';
import { parseTarget } from '../../core/address.js';
import type { Decision } from '../../core/decision.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { assertSetName } from '../../core/set-name.js';
import { action } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

export function register(program: Command): void {
  hubOptions(
    program
      .command('ban')
      .argument('<targets...>', 'addresses or CIDR ranges, IPv4 or IPv6 (several go in one bulk request)')
      .option('--for <duration>', 'ban length: 90s, 10m, 12h, 1d, 1w or permanent (default: the hub bantime)')
      .option('--reason <text>', 'why, shown in "rampart list"')
      .option('--set <name>', 'logical set the ban goes to (default blocklist)')
      .option('--force', "ban an enrolled node's or the hub machine's own address anyway (never the hub's)")
      .option('--replace', 'replace a ban in force even if it lasts longer (default: the longer ban wins)')
      .option('--json', 'print the decision as JSON'),
  )
    .description('Ban addresses or ranges on every server of the fleet')
    .addHelpText(
      'after',
      '\nExamples:\n  rampart ban 192.0.2.7 --for 12h --reason "web scanner"\n  rampart ban 2001:db8::/64 --for permanent\n  rampart ban 192.0.2.7 192.0.2.8 198.51.100.0/24 --for 1d',
    )
    .action(
      action(
        async (
          targets: string[],
          o: HubFlags & {
            for?: string;
            reason?: string;
            set?: string;
            force?: boolean;
            replace?: boolean;
            json?: boolean;
          },
        ) => {
          // A single typo is exit 2 before any network round trip. Several targets behave like
          // `import`: the valid ones apply and the hub names each refused one. How broad a range
          // may be is the hub's policy (its minimum prefix is configurable), so that stays there.
          if (targets.length === 1) parseTarget(targets[0]!);
          if (o.set !== undefined) assertSetName(o.set, '--set');
          const seconds = o.for === undefined ? undefined : parseDuration(o.for, '--for');
          const fields = {
            ...(seconds !== undefined ? { duration: seconds === null ? 'permanent' : seconds } : {}),
            ...(o.reason !== undefined ? { reason: o.reason } : {}),
            ...(o.set !== undefined ? { set: o.set } : {}),
            ...(o.force ? { force: true } : {}),
            ...(o.replace ? { replace: true } : {}),
          };
          const client = HubClient.from(o);
          if (targets.length > 1) {
            const { replace, ...item } = fields;
            const r = await client.postAccepting<{
              added: number;
              duplicates: number;
              errors: Array<{ index: number; error: string }>;
            }>(
              '/v1/decisions/bulk',
              { ...(replace ? { replace } : {}), decisions: targets.map((target) => ({ target, ...item })) },
              [422],
            );
            if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
            else {
              for (const e of r.errors) process.stderr.write(`rampart: ${e.error}\n`);
              process.stdout.write(
                `banned ${r.added} (${r.duplicates} already in force, ${r.errors.length} refused)\n`,
              );
            }
            if (r.errors.length > 0) process.exitCode = 2;
            return;
          }
          const d = await client.post<Decision & { result: 'ban' | 'kept' }>('/v1/decisions', {
            target: targets[0],
            ...fields,
          });
          if (o.json) process.stdout.write(`${JSON.stringify(d)}\n`);
          else if (d.result === 'kept') {
            const until =
              d.expiresAt === null ? 'permanently' : `until ${new Date(d.expiresAt).toISOString()}`;
            process.stdout.write(
              `kept: ${d.target} is already banned ${until} (seq ${d.seq}), longer than asked; pass --replace to shorten it\n`,
            );
          } else
            process.stdout.write(`banned ${d.target} for ${formatDuration(d.duration)} (seq ${d.seq})\n`);
        },
      ),
    );
}

import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { formatDuration, parseDuration } from '../../core/duration.js';
import { action } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

export function register(program: Command): void {
  hubOptions(
    program
      .command('ban')
      .argument('<target>', 'address or CIDR range, IPv4 or IPv6')
      .option('--for <duration>', 'ban length: 90s, 10m, 12h, 1d, 1w or permanent (default: the hub bantime)')
      .option('--reason <text>', 'why, shown in "rampart list"')
      .option('--set <name>', 'logical set the ban goes to (default blocklist)')
      .option('--json', 'print the decision as JSON'),
  )
    .description('Ban an address or range on every server of the fleet')
    .addHelpText(
      'after',
      '\nExamples:\n  rampart ban 192.0.2.7 --for 12h --reason "web scanner"\n  rampart ban 2001:db8::/64 --for permanent',
    )
    .action(
      action(
        async (
          target: string,
          o: HubFlags & { for?: string; reason?: string; set?: string; json?: boolean },
        ) => {
          // Checked here too so a typo is exit 2 before any network round trip.
          const seconds = o.for === undefined ? undefined : parseDuration(o.for, '--for');
          const d = await HubClient.from(o).post<Decision>('/v1/decisions', {
            target,
            ...(seconds !== undefined ? { duration: seconds === null ? 'permanent' : seconds } : {}),
            ...(o.reason !== undefined ? { reason: o.reason } : {}),
            ...(o.set !== undefined ? { set: o.set } : {}),
          });
          process.stdout.write(
            o.json
              ? `${JSON.stringify(d)}\n`
              : `banned ${d.target} for ${formatDuration(d.duration)} (seq ${d.seq})\n`,
          );
        },
      ),
    );
}

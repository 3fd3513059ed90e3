import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { action } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

export function register(program: Command): void {
  hubOptions(
    program
      .command('unban')
      .argument('<target>', 'address or CIDR range exactly as banned (see "rampart list")')
      .option('--set <name>', 'logical set (default blocklist)')
      .option('--json', 'print the decision as JSON'),
  )
    .description('Lift a ban on every server of the fleet')
    .action(
      action(async (target: string, o: HubFlags & { set?: string; json?: boolean }) => {
        const q = o.set ? `?set=${encodeURIComponent(o.set)}` : '';
        const d = await HubClient.from(o).delete<Decision>(`/v1/decisions/${encodeURIComponent(target)}${q}`);
        process.stdout.write(o.json ? `${JSON.stringify(d)}\n` : `unbanned ${d.target} (seq ${d.seq})\n`);
      }),
    );
}

import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { RampartError } from '../../core/errors.js';
import { action } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

export function register(program: Command): void {
  hubOptions(
    program
      .command('unban')
      .argument('<targets...>', 'addresses or CIDR ranges exactly as banned (see "rampart list")')
      .option('--set <name>', 'logical set (default blocklist)')
      .option('--json', 'print the decisions as JSON, one per line'),
  )
    .description('Lift bans on every server of the fleet')
    .action(
      action(async (targets: string[], o: HubFlags & { set?: string; json?: boolean }) => {
        const client = HubClient.from(o);
        const q = o.set ? `?set=${encodeURIComponent(o.set)}` : '';
        const failed: string[] = [];
        let last: unknown;
        // One target failing (not banned) must not stop the others: report each, exit non-zero.
        for (const target of targets) {
          try {
            const d = await client.delete<Decision>(`/v1/decisions/${encodeURIComponent(target)}${q}`);
            process.stdout.write(o.json ? `${JSON.stringify(d)}\n` : `unbanned ${d.target} (seq ${d.seq})\n`);
          } catch (err) {
            if (!(err instanceof RampartError) || targets.length === 1) throw err;
            process.stderr.write(`rampart: ${err.message}\n`);
            failed.push(target);
            last = err;
          }
        }
        if (failed.length > 0) {
          const code = (last as RampartError).code;
          throw new RampartError(
            code,
            `${failed.length} of ${targets.length} not unbanned: ${failed.join(' ')}`,
          );
        }
      }),
    );
}

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
      .option(
        '--if-reason <text>',
        'lift only a ban made with exactly this reason; any other ban in force is kept, and a target not banned is not an error',
      )
      .option('--json', 'print the decisions as JSON, one per line'),
  )
    .description('Lift bans on every server of the fleet')
    .action(
      action(async (targets: string[], o: HubFlags & { set?: string; json?: boolean; ifReason?: string }) => {
        const client = HubClient.from(o);
        const query = new URLSearchParams();
        if (o.set) query.set('set', o.set);
        if (o.ifReason !== undefined) query.set('ifReason', o.ifReason);
        const qs = query.toString();
        const q = qs ? `?${qs}` : '';
        const failed: string[] = [];
        let last: unknown;
        // One target failing (not banned) must not stop the others: report each, exit non-zero.
        for (const target of targets) {
          try {
            // With --if-reason a target not banned is an answer (404 is accepted), not a failure.
            const accept = o.ifReason === undefined ? [] : [404];
            const path = `/v1/decisions/${encodeURIComponent(target)}${q}`;
            const d = await client.call<UnbanAnswer | { error: string }>('DELETE', path, undefined, accept);
            if (!('result' in d)) {
              if (!o.json) process.stdout.write(`not banned: ${target}\n`);
              continue;
            }
            process.stdout.write(o.json ? `${JSON.stringify(d)}\n` : `${unbanLine(d)}\n`);
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

type UnbanAnswer = Decision & { result: 'unban' | 'kept' };

function unbanLine(d: UnbanAnswer): string {
  if (d.result === 'kept') return `kept ${d.target}: the ban in force has reason "${d.reason}"`;
  return `unbanned ${d.target} (seq ${d.seq})`;
}

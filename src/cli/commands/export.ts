import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { action } from '../exit.js';
import { HubClient, type HubFlags, hubOptions } from '../hub-client.js';

/**
 * One `rampart import` line for a ban in force: target, remaining seconds (or `permanent`) and
 * the reason with control bytes replaced, since reasons can hold attacker text.
 */
export function exportLine(d: Decision, now: number): string | undefined {
  let duration: string;
  if (d.expiresAt === null) duration = 'permanent';
  else {
    const left = Math.ceil((d.expiresAt - now) / 1000);
    if (left <= 0) return undefined;
    duration = String(left);
  }
  const reason = d.reason
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\s+/g, ' ')
    .trim();
  return reason ? `${d.target} ${duration} ${reason}` : `${d.target} ${duration}`;
}

export function register(program: Command): void {
  hubOptions(
    program
      .command('export')
      .option('--set <name>', 'only bans of this logical set (default: all sets)')
      .option('--json', 'print {head, decisions} as JSON'),
  )
    .description(
      'Print the bans in force, one "TARGET SECONDS REASON" per line (what "rampart import" reads)',
    )
    .action(
      action(async (o: HubFlags & { set?: string; json?: boolean }) => {
        const page = await HubClient.from(o).get<{ head: number; decisions: Decision[] }>(
          '/v1/decisions/active',
        );
        const decisions =
          o.set === undefined ? page.decisions : page.decisions.filter((d) => d.set === o.set);
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ head: page.head, decisions })}\n`);
          return;
        }
        const now = Date.now();
        const lines = decisions.map((d) => exportLine(d, now)).filter((l) => l !== undefined);
        process.stdout.write(
          `# rampart export, head ${page.head}, ${lines.length} bans\n${lines.map((l) => `${l}\n`).join('')}`,
        );
      }),
    );
}

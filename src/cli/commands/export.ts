import type { Command } from 'commander';
import type { Decision } from '../../core/decision.js';
import { progressBar } from '../../ops/progress.js';
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
        await writeLines(`# rampart export, head ${page.head}, ${lines.length} bans`, lines);
      }),
    );
}

/**
 * Writes in slices, waiting for a slow reader (ssh, a pipe to gzip) and showing progress on a
 * terminal's stderr, rather than building one string of a million lines.
 */
async function writeLines(header: string, lines: string[]): Promise<void> {
  const SLICE = 10_000;
  const bar = progressBar('export', lines.length, { minTotal: 1000 });
  process.stdout.write(`${header}\n`);
  for (let at = 0; at < lines.length; at += SLICE) {
    const text = lines
      .slice(at, at + SLICE)
      .map((l) => `${l}\n`)
      .join('');
    if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
    bar.update(Math.min(at + SLICE, lines.length));
  }
  bar.finish();
}

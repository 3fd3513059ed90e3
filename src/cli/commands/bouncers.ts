import type { Command } from 'commander';
import { action } from '../exit.js';
import { formatTable, HubClient, type HubFlags, hubOptions } from '../hub-client.js';

interface BouncerView {
  name: string;
  createdAt: number;
  lastPull: number | null;
  lastSeq: number;
}

export function register(program: Command): void {
  const bouncers = program
    .command('bouncers')
    .description('Read-only keys for CrowdSec bouncers (X-Api-Key on /v1/decisions/stream)');

  hubOptions(
    bouncers
      .command('add')
      .argument('<name>', 'bouncer name: letters, digits, . _ - (e.g. edge-fw)')
      .option('--json', 'print {name, key} as JSON'),
  )
    .description('Create a key for a bouncer: printed once, only its hash is kept')
    .action(
      action(async (name: string, o: HubFlags & { json?: boolean }) => {
        const r = await HubClient.from(o).post<{ name: string; key: string }>('/v1/bouncers', { name });
        if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else
          process.stdout.write(
            `API key for bouncer ${r.name} (shown once; put it in the bouncer's api_key):\n\n  ${r.key}\n\n`,
          );
      }),
    );

  hubOptions(bouncers.command('list').option('--json', 'print the bouncers as JSON'))
    .description('List bouncers and when each last pulled')
    .action(
      action(async (o: HubFlags & { json?: boolean }) => {
        const { bouncers: list } = await HubClient.from(o).get<{ bouncers: BouncerView[] }>('/v1/bouncers');
        if (o.json) process.stdout.write(`${JSON.stringify(list)}\n`);
        else if (list.length === 0)
          process.stdout.write('no bouncers (add one: rampart bouncers add NAME)\n');
        else {
          const rows = list.map((b) => [
            b.name,
            new Date(b.createdAt).toISOString(),
            b.lastPull ? new Date(b.lastPull).toISOString() : 'never',
            String(b.lastSeq),
          ]);
          process.stdout.write(formatTable(['NAME', 'CREATED', 'LAST PULL', 'LAST SEQ'], rows));
        }
      }),
    );

  hubOptions(bouncers.command('remove').argument('<name>', 'bouncer name'))
    .description('Remove a bouncer: its key stops working at once')
    .action(
      action(async (name: string, o: HubFlags) => {
        await HubClient.from(o).delete(`/v1/bouncers/${encodeURIComponent(name)}`);
        process.stdout.write(`removed bouncer ${name}\n`);
      }),
    );
}

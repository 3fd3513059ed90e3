import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action, usageError } from '../exit.js';

export function register(program: Command): void {
  program
    .command('join')
    .argument('<token>', 'the join token printed by "rampart nodes add NAME" on the hub')
    .option('--data <dir>', 'data folder (default: $RAMPART_DATA, /var/lib/rampart as root)')
    .option('--name <name>', 'node name (default: the name the token was issued for)')
    .option('--hub <urls>', 'more hub API URLs (comma-separated) to fail over to: hubs sharing one store')
    .description('Enrol this server in a fleet: create its key, register with the hub, write agent.yaml')
    .addHelpText(
      'after',
      '\nExample:\n  on the hub:    rampart nodes add web2\n  on web2:       rampart join rpj1.eyJ1Ijoi...\n  then:          rampart agent',
    )
    .action(
      action(async (token: string, opts: { data?: string; name?: string; hub?: string }) => {
        const { joinFleet } = await import('../../agent/join.js');
        const { hubUrls } = await import('../../hub/http-json.js');
        const hubs = opts.hub ? hubUrls(opts.hub) : [];
        for (const u of hubs) if (!URL.canParse(u)) throw usageError(`--hub: "${u}" is not a URL`);
        const e = await joinFleet({ token, dataDir: opts.data ?? defaultDataDir(), name: opts.name, hubs });
        process.stdout.write(
          `joined fleet "${e.fleet}" as ${e.name}\n  hub: ${e.hub}\n  bus: ${e.bus.type} ${e.bus.url}\n  config: ${e.file}\nstart the agent with: rampart agent${opts.data ? ` --data ${opts.data}` : ''}\n`,
        );
      }),
    );
}

import type { Command } from 'commander';
import { defaultDataDir } from '../../core/paths.js';
import { action, EXIT } from '../exit.js';

export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'Check this server: kernel modules, firewall tools, data file permissions, hub, broker, clock',
    )
    .option('--data <dir>', 'data folder (default: $RAMPART_DATA, /var/lib/rampart as root)')
    .option('--config <file>', 'rampart.yaml (default /etc/rampart/rampart.yaml when it exists)')
    .option(
      '--hub <url>',
      'hub to check (default: $RAMPART_HUB, else what "rampart join" or a local hub wrote)',
    )
    .option('--bus <url>', 'broker to check (default: the enrolment or the local hub)')
    .option('--json', 'print the checks as a JSON array of {check, status, detail, fix}')
    .addHelpText(
      'after',
      `
Prints one line per check: ok, warn or fail, with the fix. Exit codes: 0 nothing failed (warnings
allowed), 1 a check failed, 2 bad arguments or config.

Examples:
  sudo rampart doctor
  rampart doctor --hub http://hub.example:7780 --json | jq '.[] | select(.status != "ok")'`,
    )
    .action(
      action(async (o: { data?: string; config?: string; hub?: string; bus?: string; json?: boolean }) => {
        const { loadConfig } = await import('../../config/schema.js');
        const { runDoctor, formatResult } = await import('../../ops/doctor/run.js');
        const config = loadConfig(o.config);
        const results = await runDoctor({
          dataDir: o.data ?? config.data ?? defaultDataDir(),
          hub: o.hub ?? (process.env.RAMPART_HUB || undefined),
          bus: o.bus,
          config,
        });
        if (o.json) process.stdout.write(`${JSON.stringify(results)}\n`);
        else process.stdout.write(results.map((r) => `${formatResult(r)}\n`).join(''));
        if (results.some((r) => r.status === 'fail')) process.exitCode = EXIT.FAILURE;
      }),
    );
}

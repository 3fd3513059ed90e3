import type { Command } from 'commander';
import { LOG_LEVELS, logSettings } from '../core/log-settings.js';

/**
 * `--log-level` and `--log-format` on the program and on every subcommand, so they work before or
 * after the command name (`rampart agent --log-level debug`). They reach every logger through the
 * environment and are checked once, before the command runs.
 */
export function addLogOptions(program: Command): void {
  const add = (cmd: Command) => {
    // The personalities (vallumd, banban) parse their original tool's flags themselves.
    if (ownsItsFlags(cmd)) return;
    cmd
      .option(
        '--log-level <level>',
        `log level: ${LOG_LEVELS.join(', ')} (default info, or $RAMPART_LOG_LEVEL)`,
      )
      .option(
        '--log-format <format>',
        'json or text (default: text on a terminal, else JSON; $RAMPART_LOG_FORMAT)',
      );
    for (const sub of cmd.commands) add(sub);
  };
  add(program);
  program.hook('preAction', (_root, actionCommand) => {
    const o = actionCommand.optsWithGlobals<{ logLevel?: string; logFormat?: string }>();
    if (o.logLevel !== undefined) process.env.RAMPART_LOG_LEVEL = o.logLevel;
    if (o.logFormat !== undefined) process.env.RAMPART_LOG_FORMAT = o.logFormat;
    logSettings();
  });
}

function ownsItsFlags(cmd: Command): boolean {
  return (cmd as unknown as { _passThroughOptions?: boolean })._passThroughOptions === true;
}

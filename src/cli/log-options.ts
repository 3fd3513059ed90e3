import type { Command } from 'commander';
import { LOG_LEVELS, logSettings } from '../core/log-settings.js';
import { addOptions, type OptionSpec } from './option-specs.js';

/** `--log-level` and `--log-format`, on the program and every subcommand. */
export const LOG_OPTIONS: readonly OptionSpec[] = [
  {
    flag: '--log-level',
    value: 'level',
    description: `log level: ${LOG_LEVELS.join(', ')} (default info, or $RAMPART_LOG_LEVEL)`,
  },
  {
    flag: '--log-format',
    value: 'format',
    description: 'json or text (default: text on a terminal, else JSON; $RAMPART_LOG_FORMAT)',
  },
];

/**
 * The log options on the program and on every subcommand, so they work before or after the
 * command name (`rampart agent --log-level debug`). They reach every logger through the
 * environment and are checked once, before the command runs.
 */
export function addLogOptions(program: Command): void {
  const add = (cmd: Command) => {
    // The personalities (vallumd, banban) parse their original tool's flags themselves.
    if (ownsItsFlags(cmd)) return;
    addOptions(cmd, LOG_OPTIONS);
    for (const sub of cmd.commands) add(sub);
  };
  add(program);
  program.hook('preAction', (_root, actionCommand) => {
    applyLogOptions(actionCommand.optsWithGlobals<{ logLevel?: string; logFormat?: string }>());
  });
}

/** Hands the log options to every logger (through the environment); a wrong value is a usage error. */
export function applyLogOptions(o: { logLevel?: unknown; logFormat?: unknown }): void {
  if (typeof o.logLevel === 'string') process.env.RAMPART_LOG_LEVEL = o.logLevel;
  if (typeof o.logFormat === 'string') process.env.RAMPART_LOG_FORMAT = o.logFormat;
  logSettings();
}

function ownsItsFlags(cmd: Command): boolean {
  return (cmd as unknown as { _passThroughOptions?: boolean })._passThroughOptions === true;
}

import { action } from '../exit.js';
import { applyLogOptions, LOG_OPTIONS } from '../log-options.js';
import { plainOptions } from '../option-specs.js';
import { AGENT_OPTIONS, type AgentOptions, runAgent } from './agent.js';

/**
 * `rampart agent` without commander. An idle agent keeps what it loaded resident, and commander
 * was ≈ 0.9 MB of it (ADR 0060, ADR 0064). A plain command line (option-specs.ts: the agent's and
 * the log options, each at most once, `--watch` repeatable) is read here from the same option
 * list commander registers; anything else (help, a bad option, a missing value) returns false and
 * goes to commander, whose help and errors stay as they were. A test checks that commander reads
 * every accepted line the same way.
 */
export async function runPlainAgent(args: readonly string[]): Promise<boolean> {
  const opts = plainOptions(args, [...AGENT_OPTIONS, ...LOG_OPTIONS]);
  if (opts === null) return false;
  await action(async () => {
    // What the commander path's preAction hook does.
    applyLogOptions(opts);
    await runAgent(opts as unknown as AgentOptions);
  })();
  return true;
}

import type { Command } from 'commander';

/**
 * Every CLI command lives in its own file under commands/ and exports `register(program)`.
 * Adding a command is one import and one line in this list.
 */
type Register = (program: Command) => void;

export const commands: Array<() => Promise<{ register: Register }>> = [
  () => import('./commands/join.js'),
  () => import('./commands/agent.js'),
  () => import('./commands/up.js'),
  () => import('./commands/check.js'),
  () => import('./commands/firewall.js'),
  () => import('./commands/hub.js'),
  () => import('./commands/ban.js'),
  () => import('./commands/unban.js'),
  () => import('./commands/list.js'),
  () => import('./commands/allow.js'),
  () => import('./commands/status.js'),
  () => import('./commands/nodes.js'),
  () => import('./commands/import.js'),
  () => import('./commands/export.js'),
  () => import('./commands/bouncers.js'),
  () => import('./commands/f2b-zmq.js'),
  () => import('./commands/net2ban.js'),
  () => import('./commands/vallumd.js'),
  () => import('./commands/banban.js'),
  () => import('./commands/syslog-blacklist.js'),
  () => import('./commands/config.js'),
  () => import('./commands/completion.js'),
  () => import('./commands/doctor.js'),
];

import type { Command } from 'commander';

/**
 * Every CLI command lives in its own file under commands/ and exports `register(program)`.
 * Adding a command is one line in this list: the names it registers (a test checks them) and
 * its import. Naming them lets `rampart <name>` load only that file.
 */
type Register = (program: Command) => void;

export interface CommandFile {
  names: readonly string[];
  /** It reads the whole command tree (completion): never loaded alone. */
  needsTree?: boolean;
  load: () => Promise<{ register: Register }>;
}

export const commands: CommandFile[] = [
  { names: ['join'], load: () => import('./commands/join.js') },
  { names: ['agent'], load: () => import('./commands/agent.js') },
  { names: ['up'], load: () => import('./commands/up.js') },
  { names: ['check'], load: () => import('./commands/check.js') },
  { names: ['firewall'], load: () => import('./commands/firewall.js') },
  { names: ['hub'], load: () => import('./commands/hub.js') },
  { names: ['ban'], load: () => import('./commands/ban.js') },
  { names: ['unban'], load: () => import('./commands/unban.js') },
  { names: ['list'], load: () => import('./commands/list.js') },
  { names: ['allow'], load: () => import('./commands/allow.js') },
  { names: ['status'], load: () => import('./commands/status.js') },
  { names: ['nodes'], load: () => import('./commands/nodes.js') },
  { names: ['import'], load: () => import('./commands/import.js') },
  { names: ['export'], load: () => import('./commands/export.js') },
  { names: ['bouncers'], load: () => import('./commands/bouncers.js') },
  { names: ['f2b-zmq'], load: () => import('./commands/f2b-zmq.js') },
  { names: ['net2ban', 'net2banctl'], load: () => import('./commands/net2ban.js') },
  { names: ['vallumd'], load: () => import('./commands/vallumd.js') },
  { names: ['banban'], load: () => import('./commands/banban.js') },
  { names: ['syslog-blacklist', 'syslog-inject'], load: () => import('./commands/syslog-blacklist.js') },
  { names: ['config'], load: () => import('./commands/config.js') },
  { names: ['completion'], needsTree: true, load: () => import('./commands/completion.js') },
  { names: ['doctor'], load: () => import('./commands/doctor.js') },
];

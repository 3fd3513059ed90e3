import { describe, expect, it } from 'vitest';
import { AGENT_OPTIONS } from '../../src/cli/commands/agent.js';
import { LOG_OPTIONS } from '../../src/cli/log-options.js';
import { plainOptions } from '../../src/cli/option-specs.js';
import { buildProgram } from '../../src/cli/program.js';
import { viaCommander } from './via-commander.js';

const SPECS = [...AGENT_OPTIONS, ...LOG_OPTIONS];

/** What commander hands `rampart agent`'s action, with the log options it reads on the program. */
async function viaAgent(args: string[]): Promise<Record<string, unknown>> {
  return { ...(await viaCommander('agent', args)).command.optsWithGlobals() };
}

describe('rampart agent without commander', () => {
  it('reads every plain command line exactly as commander does', async () => {
    const plain = [
      [],
      ['--config', '/etc/rampart/rampart.yaml', '--data', '/var/lib/rampart'],
      ['--config=/etc/rampart/rampart.yaml', '--data=/var/lib/rampart'],
      ['--watch', '/var/log/auth.log', '--watch=/var/log/mail.log', '--from-start'],
      ['--firewall', 'dry-run', '--bus', 'mqtt://192.0.2.1:1883,nats://192.0.2.2:4222'],
      ['--fail2ban-jails', '/etc/fail2ban', '--metrics-listen', '127.0.0.1:9780'],
      ['--log-level', 'debug', '--log-format', 'text', '--from-start', '--from-start'],
      ['--bus=mqtt://192.0.2.1:1883/?a=b'],
    ];
    for (const args of plain) {
      const fast = plainOptions(args, SPECS);
      expect({ args, fast }).toEqual({ args, fast: await viaAgent(args) });
    }
  });

  it('leaves everything else to commander (help, errors, odd spellings)', () => {
    for (const args of [
      ['--help'],
      ['-h'],
      ['--version'],
      ['--bogus'],
      ['--conf', 'x.yaml'],
      ['--config'],
      ['--config='],
      ['--config', '--data', 'd'],
      ['--config', 'a.yaml', '--config', 'b.yaml'],
      ['--from-start=yes'],
      ['--watch', '-'],
      ['--', '--config', 'x'],
      ['extra'],
      ['-c', 'x.yaml'],
    ]) {
      expect({ args, fast: plainOptions(args, SPECS) }).toEqual({ args, fast: null });
    }
  });

  it('every option commander registers for the agent comes from the one list', async () => {
    const program = await buildProgram('agent');
    const registered = program.commands[0]!.options.map((o) => o.long).sort();
    expect(registered).toEqual(SPECS.map((s) => s.flag).sort());
  });
});

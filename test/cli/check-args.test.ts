import { describe, expect, it } from 'vitest';
import { plainCheckArgs } from '../../src/cli/commands/check-args.js';
import { viaCommander } from './via-commander.js';

/** What commander hands `rampart check`'s action for these words after `check`. */
async function viaCheck(args: string[]): Promise<{ logs: string[]; opts: Record<string, unknown> }> {
  const [logs, opts] = (await viaCommander('check', args)).values;
  return { logs: logs as string[], opts: { ...(opts as Record<string, unknown>) } };
}

describe('rampart check without commander', () => {
  it('reads every plain command line exactly as commander does', async () => {
    const plain = [
      ['auth.log'],
      ['-'],
      ['--json', 'a.log', 'b.log'],
      ['a.log', '--json', '--matches', 'b.log'],
      ['--rule', 'sshd', '--aggressive', 'a.log'],
      ['--rules', 'mine.yaml', '--builtin', '-'],
      ['--fail2ban-filter', '/etc/fail2ban/filter.d/sshd.conf', 'a.log', '--json'],
      ['--rule', 'sshd', '--rules', 'x.yaml', 'a.log'],
      ['--json', '--json', 'a.log'],
      ['check', 'json'],
    ];
    for (const args of plain) {
      const fast = plainCheckArgs(args);
      expect({ args, fast }).toEqual({ args, fast: await viaCheck(args) });
    }
  });

  it('leaves everything else to commander (help, errors, log options, odd spellings)', () => {
    for (const args of [
      [],
      ['--json'],
      ['--help', 'a.log'],
      ['-h'],
      ['--rule=sshd', 'a.log'],
      ['--rule', '-', 'a.log'],
      ['--rule', 'sshd', '--rule', 'dovecot', 'a.log'],
      ['--rules'],
      ['--', 'a.log'],
      ['--log-level', 'debug', 'a.log'],
      ['--jsonx', 'a.log'],
      ['-j', 'a.log'],
      ['--version'],
    ]) {
      expect({ args, fast: plainCheckArgs(args) }).toEqual({ args, fast: null });
    }
  });
});

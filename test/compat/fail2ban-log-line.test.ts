import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseFail2banLogLine } from '../../src/compat/fail2ban/log-line.js';
import { startFail2ban } from '../helpers/fail2ban-server.js';
import { requirements } from '../helpers/requirements.js';
import { waitFor } from '../sources/helpers.js';

const run = promisify(execFile);
const brief = (line: string) => {
  const e = parseFail2banLogLine(line);
  return e && { jail: e.jail, action: e.action, restored: e.restored, target: e.target?.text ?? null };
};

describe('fail2ban.log lines', () => {
  it('reads every fail2ban version’s Ban/Unban/Restore Ban shape', () => {
    const samples: Array<[string, ReturnType<typeof brief>]> = [
      // 0.8: no pid, WARNING
      [
        '2009-04-02 18:15:53,693 fail2ban.actions: WARNING [php-url-fopen] Ban 192.0.2.4',
        { jail: 'php-url-fopen', action: 'ban', restored: false, target: '192.0.2.4' },
      ],
      [
        '2009-04-02 18:25:53,693 fail2ban.actions: WARNING [ssh] Unban 192.0.2.4',
        { jail: 'ssh', action: 'unban', restored: false, target: '192.0.2.4' },
      ],
      // 0.9: pid, WARNING
      [
        '2014-08-01 10:00:00,123 fail2ban.actions        [1234]: WARNING [sshd] Ban 198.51.100.9',
        { jail: 'sshd', action: 'ban', restored: false, target: '198.51.100.9' },
      ],
      // 0.10 / 0.11 / 1.x: pid, NOTICE, Restore Ban, IPv6
      [
        '2026-12-03 10:16:16,342 fail2ban.actions        [13862]: NOTICE  [sshd] Ban 203.0.113.5',
        { jail: 'sshd', action: 'ban', restored: false, target: '203.0.113.5' },
      ],
      [
        '2026-12-03 10:16:17,149 fail2ban.actions        [13877]: NOTICE  [nginx-http-auth] Restore Ban 2001:db8::5',
        { jail: 'nginx-http-auth', action: 'ban', restored: true, target: '2001:db8::5' },
      ],
      [
        '2026-12-03 10:16:16,468 fail2ban.actions        [13862]: NOTICE  [sshd] Unban 2001:DB8:0:0::1',
        { jail: 'sshd', action: 'unban', restored: false, target: '2001:db8::1' },
      ],
      // logtarget = SYSLOG: the syslog daemon's prefix, no date of fail2ban's own
      [
        'Dec  3 10:16:16 web1 fail2ban-server[13862]: fail2ban.actions        [13862]: NOTICE  [sshd] Ban 192.0.2.8',
        { jail: 'sshd', action: 'ban', restored: false, target: '192.0.2.8' },
      ],
      // `UnBan` is what fail2ban-zmq-tools' monitor regex also accepted
      [
        '2010-01-01 00:00:00,000 fail2ban.actions: WARNING [ssh] UnBan 192.0.2.4',
        { jail: 'ssh', action: 'unban', restored: false, target: '192.0.2.4' },
      ],
      // a ban of something that is not an address (fail2ban ≥ 0.10 `<F-ID>`): kept, target null
      [
        '2026-12-03 10:16:16,342 fail2ban.actions        [1]: NOTICE  [users] Ban mallory',
        { jail: 'users', action: 'ban', restored: false, target: null },
      ],
    ];
    for (const [line, want] of samples) expect(brief(line), line).toEqual(want);
  });

  it('ignores every other line, including look-alikes an attacker could plant', () => {
    for (const line of [
      '2026-12-03 10:16:16,342 fail2ban.filter         [13862]: INFO    [sshd] Found 192.0.2.1 - 2026-12-03 10:16:16',
      '2026-12-03 10:16:16,342 fail2ban.actions        [13862]: NOTICE  [sshd] 192.0.2.1 already banned',
      '2026-12-03 10:16:16,190 fail2ban.actions        [13862]: INFO      banTime: 600',
      '2026-12-03 10:16:16,342 fail2ban.actions        [13862]: NOTICE  [sshd] Ban 192.0.2.1 extra',
      '2026-12-03 10:16:16,342 fail2ban.actions        [13862]: NOTICE  [sshd] Increase Ban 192.0.2.1 (2 # 2:00:00 -> x)',
      // sshd logging a user name that spells a ban: the logger name is not fail2ban.actions
      'Dec  3 10:16:16 web1 sshd[1]: Invalid user x fail2ban.actionsx: NOTICE [sshd] Ban 192.0.2.66',
      '',
      `2026-12-03 10:16:16,342 fail2ban.actions [1]: NOTICE  [sshd] Ban 192.0.2.1${' '.repeat(2000)}`,
    ]) {
      expect(parseFail2banLogLine(line), line).toBeNull();
    }
  });

  it('keeps the line’s own time (local time, as fail2ban writes it)', () => {
    const e = parseFail2banLogLine(
      '2024-01-01 12:00:00,123 fail2ban.actions        [1]: NOTICE  [sshd] Ban 192.0.2.1',
    );
    expect(e?.time).toBe(new Date(2024, 0, 1, 12, 0, 0, 123).getTime());
  });

  describe('lines a real fail2ban-server wrote', () => {
    const req = requirements('fail2ban.log from a real fail2ban-server', ['cmd:fail2ban-server']);
    it.skipIf(req.skip)('Ban, Unban (IPv4, IPv6) and Restore Ban after a restart', async () => {
      const server = await startFail2ban('sshd', () => ({ ban: 'true', unban: 'true' }), 600);
      try {
        const log = join(server.dir, 'server.log');
        const events = () =>
          readFileSync(log, 'utf8')
            .split('\n')
            .map(brief)
            .filter((e) => e !== null);
        const client = (...args: string[]) => run('fail2ban-client', ['-s', server.socket, ...args]);
        await client('set', 'sshd', 'banip', '192.0.2.1', '2001:db8::5');
        await client('set', 'sshd', 'unbanip', '192.0.2.1');
        await waitFor(() => events().length >= 3, 'three ban lines');
        await server.restart();
        await waitFor(() => events().some((e) => e.restored), 'a Restore Ban line');
        const seen = events();
        expect(seen.slice(0, 3)).toEqual([
          { jail: 'sshd', action: 'ban', restored: false, target: '192.0.2.1' },
          { jail: 'sshd', action: 'ban', restored: false, target: '2001:db8::5' },
          { jail: 'sshd', action: 'unban', restored: false, target: '192.0.2.1' },
        ]);
        // Stopping fail2ban unbans what it holds; the restart restores it from its database.
        expect(seen.slice(3)).toEqual([
          { jail: 'sshd', action: 'unban', restored: false, target: '2001:db8::5' },
          { jail: 'sshd', action: 'ban', restored: true, target: '2001:db8::5' },
        ]);
      } finally {
        await server.stop();
      }
    });
  });
});

import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFail2banJailSet } from '../../src/compat/fail2ban-jail.js';
import { ConfigError } from '../../src/core/errors.js';
import { Engine } from '../../src/detect/engine.js';
import type { DetectEvent } from '../../src/detect/types.js';
import { requirements } from '../helpers/requirements.js';
import { tempDir } from './tmp.js';

// Debian's real /etc/fail2ban copied as it is, with an operator's jail.local and jail.d files on
// top: what `rampart agent --fail2ban-jails DIR` loads.
const req = requirements("Debian's /etc/fail2ban layout", [
  'file:/etc/fail2ban/jail.conf',
  'file:/etc/fail2ban/filter.d/exim.conf',
]);

describe.skipIf(req.skip)('fail2ban jails: a real /etc/fail2ban with jail.local and jail.d', () => {
  const tmp = tempDir('f2b-layout');
  const etc = join(tmp.dir, 'fail2ban');
  const auth = join(tmp.dir, 'auth.log');
  const exim = join(tmp.dir, 'exim-mainlog');
  if (!req.skip) {
    cpSync('/etc/fail2ban', etc, { recursive: true });
    mkdirSync(join(etc, 'jail.d'), { recursive: true });
    tmp.write(
      'fail2ban/jail.local',
      [
        '[DEFAULT]',
        'ignoreip = 127.0.0.1/8 ::1 198.51.100.0/24',
        'bantime.increment = true',
        'bantime.factor = 2',
        'bantime.maxtime = 1w',
        '[sshd]',
        'backend = auto',
        `logpath = ${auth}`,
        'maxretry = 2',
      ].join('\n'),
    );
    tmp.write(
      'fail2ban/jail.d/mail.local',
      ['[exim]', 'enabled = true', `logpath = ${exim}`, 'maxretry = 3', 'findtime = 1h', 'bantime = 2h'].join(
        '\n',
      ),
    );
  }

  it('loads exactly the enabled jails with their options, and the logs to follow', () => {
    const set = loadFail2banJailSet(etc);
    expect(set.rules.map((r) => r.name).sort()).toEqual(['exim', 'sshd']);
    expect(set.paths.sort()).toEqual([auth, exim].sort());
    const sshd = set.rules.find((r) => r.name === 'sshd')!;
    expect(sshd).toMatchObject({ maxretry: 2, findtime: 600, bantime: 600, sources: [auth] });
    expect(sshd.escalation).toEqual({ multiplier: 4, max: 604800 });
    expect(sshd.ignoreNets).toContain('198.51.100.0/24');
    const eximRule = set.rules.find((r) => r.name === 'exim')!;
    expect(eximRule).toMatchObject({ maxretry: 3, findtime: 3600, bantime: 7200, sources: [exim] });
  });

  it('the jails ban through the engine: right log, right threshold, ignoreip honoured', () => {
    const engine = new Engine(loadFail2banJailSet(etc).rules, { clock: 'log' });
    const bans: DetectEvent[] = [];
    const feed = (source: string, text: string) => bans.push(...engine.feed({ text, source }));
    const eximLine = (ip: string, s: number) =>
      `2024-03-01 10:00:0${s} login authenticator failed for (x) [${ip}]: 535 Incorrect authentication data (set_id=bob)`;
    for (const s of [1, 2, 3]) feed(exim, eximLine('203.0.113.7', s));
    // The same lines in another jail's log are not exim's: each jail reads its own logpath.
    for (const s of [1, 2, 3]) feed(auth, eximLine('203.0.113.8', s));
    for (const s of [1, 2, 3]) feed(exim, eximLine('198.51.100.9', s));
    for (const s of [1, 2])
      feed(auth, `Mar  1 10:00:0${s} web1 sshd[7]: Failed password for root from 192.0.2.44 port 22 ssh2`);
    expect(bans.map((b) => `${b.rule} ${b.target.text} ${b.duration}`)).toEqual([
      'exim 203.0.113.7 7200',
      'sshd 192.0.2.44 600',
    ]);
  });

  it('a folder without jail.conf is one clear error', () => {
    expect(() => loadFail2banJailSet(tmp.dir)).toThrow(ConfigError);
    expect(() => loadFail2banJailSet(tmp.dir)).toThrow(/no jail\.conf in/);
  });
});

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFail2banJails, parseFilterSpec } from '../../src/compat/fail2ban-jail.js';
import { ConfigError } from '../../src/core/errors.js';
import { compileRule } from '../../src/detect/compile.js';
import { requirements } from '../helpers/requirements.js';
import { tempDir } from './tmp.js';

const tmp = tempDir('f2b-jail');
mkdirSync(join(tmp.dir, 'filter.d'));
mkdirSync(join(tmp.dir, 'jail.d'));
tmp.write('paths.conf', '[DEFAULT]\napp_log = /var/log/app.log\n');
tmp.write(
  'filter.d/app.conf',
  '[Definition]\nfailregex = ^fail from <HOST>$\n            <extra-<mode>>\nextra-normal =\nextra-aggressive = ^probe from <HOST>$\nmode = normal\n',
);
const JAIL = tmp.write(
  'jail.conf',
  [
    '[INCLUDES]',
    'before = paths.conf',
    '[DEFAULT]',
    'enabled = false',
    'bantime = 10m',
    'findtime = 10m',
    'maxretry = 5',
    'mode = normal',
    'ignoreip = 127.0.0.1/8 ::1 trusted.example.com',
    'filter = %(__name__)s[mode=%(mode)s]',
    '[app]',
    'logpath = %(app_log)s',
    '[app-aggressive]',
    'filter = app[mode=aggressive]',
    'logpath = /var/log/app.log tail',
    'maxretry = 2',
    'bantime = 1h',
    'bantime.increment = true',
    'bantime.maxtime = 1w',
    '[broken]',
    'filter = missing-filter',
  ].join('\n'),
);
tmp.write(
  'jail.d/defaults.conf',
  '[app]\nenabled = true\n[app-aggressive]\nenabled = true\n[broken]\nenabled = true\n',
);
tmp.write('jail.local', '[app]\nmaxretry = 3\n');

describe('fail2ban jails', () => {
  it('enabled jails load their filter with the jail options, .d and .local applied', () => {
    const jails = loadFail2banJails(JAIL);
    expect(jails.map((j) => j.name)).toEqual(['app', 'app-aggressive', 'broken']);
    const [app, aggressive, broken] = jails;
    expect(app!.rule).toMatchObject({
      name: 'app',
      maxretry: 3,
      findtime: 600,
      bantime: 600,
      sources: ['/var/log/app.log'],
    });
    expect(app!.rule!.ignoreNets).toEqual(['127.0.0.0/8', '::1']);
    expect(app!.notes.join()).toMatch(/trusted\.example\.com/);
    expect(compileRule(app!.rule!).test('probe from 192.0.2.1').kind).toBe('none');
    expect(aggressive!.filterOptions).toEqual({ mode: 'aggressive' });
    expect(aggressive!.rule).toMatchObject({
      maxretry: 2,
      bantime: 3600,
      escalation: { multiplier: 2, max: 604800 },
    });
    expect(compileRule(aggressive!.rule!).test('probe from 192.0.2.1').ip).toBe('192.0.2.1');
    expect(broken!.error).toBeInstanceOf(ConfigError);
    expect(broken!.error!.message).toMatch(/missing-filter\.conf: file not found/);
    expect(loadFail2banJails(JAIL, { includeDisabled: true }).length).toBe(3);
  });

  it('filter specs: name[key=value, quoted="a, b"]; a bad one names the jail key', () => {
    expect(parseFilterSpec('sshd')).toEqual({ name: 'sshd', options: {} });
    expect(parseFilterSpec('sshd[mode=aggressive, publickey="any, really"]')).toEqual({
      name: 'sshd',
      options: { mode: 'aggressive', publickey: 'any, really' },
    });
    expect(() => parseFilterSpec('bad name[', { file: 'j.conf', line: 4, key: 'x.filter' })).toThrow(
      'j.conf:4: x.filter:',
    );
  });

  it('a bad value in a jail names file, line and key', () => {
    const bad = tmp.write('badjail.conf', '[x]\nenabled = true\nfilter = app\nmaxretry = lots\n');
    expect(() => loadFail2banJails(bad, { filterDir: join(tmp.dir, 'filter.d') })).toThrow(
      `${bad}:4: x.maxretry:`,
    );
  });

  const req = requirements("Debian's /etc/fail2ban/jail.conf", ['file:/etc/fail2ban/jail.conf']);
  it.skipIf(req.skip)("Debian's jail.conf: the jails jail.d enables load (sshd)", () => {
    const jails = loadFail2banJails('/etc/fail2ban/jail.conf');
    const sshd = jails.find((j) => j.name === 'sshd');
    expect(sshd?.error).toBeUndefined();
    expect(sshd?.rule?.patterns.length).toBeGreaterThan(10);
    const all = loadFail2banJails('/etc/fail2ban/jail.conf', { includeDisabled: true });
    expect(all.length).toBeGreaterThan(50);
    const failed = all.filter((j) => j.error).map((j) => j.name);
    console.log(
      `Debian jail.conf: ${all.length} jails, ${all.length - failed.length} load; not: ${failed.join(', ')}`,
    );
  });
});

describe('fail2ban jails on the systemd backend', () => {
  // At describe level: a cleanup hook registered inside a test never runs.
  const dir = tempDir('f2b-journal');
  it("read the journal through their journalmatch (the jail's, else the filter's), one reader per match set", async () => {
    mkdirSync(join(dir.dir, 'filter.d'));
    dir.write(
      'filter.d/svc.conf',
      '[Definition]\nfailregex = ^fail from <HOST>$\njournalmatch = _SYSTEMD_UNIT=svc.service + _COMM=svc\n',
    );
    dir.write(
      'jail.conf',
      [
        '[DEFAULT]',
        'backend = systemd',
        'enabled = true',
        '[svc]',
        '[svc-strict]',
        'filter = svc',
        'maxretry = 1',
        '[svc-own]',
        'filter = svc',
        'journalmatch = SYSLOG_IDENTIFIER=svc',
      ].join('\n'),
    );
    const { loadFail2banJailSet } = await import('../../src/compat/fail2ban-jail.js');
    const set = loadFail2banJailSet(dir.dir);
    expect(set.journals).toEqual([
      {
        label: 'journald:_SYSTEMD_UNIT=svc.service + _COMM=svc',
        matches: ['_SYSTEMD_UNIT=svc.service', '+', '_COMM=svc'],
      },
      { label: 'journald:SYSLOG_IDENTIFIER=svc', matches: ['SYSLOG_IDENTIFIER=svc'] },
    ]);
    expect(set.rules.map((r) => r.sources)).toEqual([
      ['journald:_SYSTEMD_UNIT=svc.service + _COMM=svc'],
      ['journald:_SYSTEMD_UNIT=svc.service + _COMM=svc'],
      ['journald:SYSLOG_IDENTIFIER=svc'],
    ]);
    expect(set.paths).toEqual([]);
    dir.write('jail.local', '[svc-own]\njournalmatch = --file=/etc/shadow\n');
    expect(loadFail2banJailSet(dir.dir).warnings.join('\n')).toMatch(
      /jail svc-own not loaded: .*svc-own\.journalmatch: journalmatch term "--file=\/etc\/shadow" is not FIELD=value or \+/,
    );
  });
});

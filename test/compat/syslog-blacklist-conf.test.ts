import { describe, expect, it } from 'vitest';
import { loadSyslogBlacklistConf, parseSyslogBlacklistConf } from '../../src/compat/syslog-blacklist-conf.js';
import { ConfigError } from '../../src/core/errors.js';
import { compileRule } from '../../src/detect/compile.js';
import { Engine } from '../../src/detect/engine.js';
import { tempDir } from './tmp.js';

const tmp = tempDir('syslog-blacklist');

const CONF = `# /etc/syslog-blacklist.conf
[failed ssh user] 12h # amount of time user is blocked
^sshd\\[\\d+\\]: Failed password for \\w+ from {IP_NUMBER}
^sshd\\[\\d+\\]: Invalid user (?<user>\\S+) from {IP_NUMBER}

[apache probe] 1d
{IP_NUMBER} 404 /phpMyAdmin

[default time]
^named\\[\\d+\\]: client {IP_NUMBER}#\\d+: query \\(cache\\) denied
`;

describe('syslog-blacklist.conf loader', () => {
  it('one rule per section: the time, maxretry 1, the set, patterns matched after the host', () => {
    const rules = loadSyslogBlacklistConf(tmp.write('sb.conf', CONF), { set: 'blacklist' });
    expect(rules.map((r) => [r.name, r.bantime, r.maxretry, r.set, r.patterns.length])).toEqual([
      ['failed ssh user', 43200, 1, 'blacklist', 2],
      ['apache probe', 86400, 1, 'blacklist', 1],
      ['default time', 3600, 1, 'blacklist', 1],
    ]);
    const ssh = compileRule(rules[0]!);
    expect(ssh.test('web1 sshd[42]: Failed password for root from 203.0.113.5 port 22 ssh2')).toMatchObject({
      kind: 'fail',
      ip: '203.0.113.5',
    });
    expect(ssh.test('web1 sshd[42]: Invalid user admin from 2001:db8::5')).toMatchObject({
      ip: '2001:db8::5',
      fields: { user: 'admin' },
    });
    // `^` anchors at the program: text elsewhere in the message does not match.
    expect(ssh.test('web1 cron[1]: x sshd[42]: Failed password for root from 203.0.113.5').kind).toBe('none');
  });

  it('a single matching line blacklists for the section time', () => {
    const rules = parseSyslogBlacklistConf(CONF, 'sb.conf');
    const engine = new Engine(rules, { clock: 'log', ignoreSources: true });
    const events = engine.feed({
      text: 'Jan  5 10:00:00 web1 named[7]: client 198.51.100.9#5353: query (cache) denied',
      source: 'x',
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'ban', rule: 'default time', duration: 3600, set: 'blacklist' });
  });

  it('bad files give one error naming file and line', () => {
    const cases: [string, RegExp][] = [
      ['^orphan {IP_NUMBER}\n', /x\.conf:1: pattern line before the first \[section\]/],
      ['[a] 12h\n^no address here\n', /x\.conf:2: a: pattern has no \{IP_NUMBER\}/],
      ['[a] soon\nfrom {IP_NUMBER}\n', /x\.conf:1: a: .*not a duration/],
      ['[a] 1h\n\n[b] 1h\nfrom {IP_NUMBER}\n', /x\.conf:1: section \[a\] has no pattern lines/],
      ['[a] 1h\nfrom {IP_NUMBER}\n[a] 2h\nx {IP_NUMBER}\n', /x\.conf:3: section \[a\] appears twice/],
      ['[a] 1h\nfrom {IP_NUMBER} (unclosed\n', /x\.conf:2: a: cannot use pattern/],
      ['[a 1h\n', /x\.conf:1: a section header looks like/],
      ['# only comments\n', /x\.conf: no \[section\]/],
    ];
    for (const [text, msg] of cases) {
      expect(() => parseSyslogBlacklistConf(text, 'x.conf')).toThrow(ConfigError);
      expect(() => parseSyslogBlacklistConf(text, 'x.conf')).toThrow(msg);
    }
    expect(() => loadSyslogBlacklistConf(`${tmp.dir}/none.conf`)).toThrow(
      /none\.conf: cannot read: no such file \(ENOENT\)/,
    );
  });
});

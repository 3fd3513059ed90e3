import { describe, expect, it } from 'vitest';
import { compileDatePatterns, cutDate, translateDatePattern } from '../../src/compat/fail2ban-date.js';
import { loadFail2banFilter, readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { compileRule } from '../../src/detect/compile.js';
import { Engine } from '../../src/detect/engine.js';
import { tempDir } from './tmp.js';

const tmp = tempDir('f2b-filter');

const COMMON = `
[INCLUDES]
after = common.local
[DEFAULT]
_daemon = \\S*
__pid_re = (?:\\[\\d+\\])
__prefix_line = (?:\\S+\\s+)?<_daemon><__pid_re>?:\\s+
datepattern = {^LN-BEG}
`;
tmp.write('common.conf', COMMON);

// A filter exercising the features real filter.d files use, modelled on sshd.conf.
const APP = tmp.write(
  'app.conf',
  `
[INCLUDES]
before = common.conf

[DEFAULT]
_daemon = appd

[Init]
greeting = hello

[Definition]
prefregex = ^<F-MLFID>%(__prefix_line)s</F-MLFID><F-CONTENT>.+</F-CONTENT>$
failregex = ^[Aa]uth failure for <F-USER>\\S+</F-USER> from <HOST>( port \\d+)?$
            ^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\\S+) for (?P<cond_inv>invalid user )?<F-USER>\\S+</F-USER> from <HOST>(?(cond_inv): invalid|: valid)$
            <mdre-<mode>>
            ^<F-NOFAIL>Connection from</F-NOFAIL> <HOST>
            ^<F-MLFGAINED>Accepted \\w+</F-MLFGAINED> for <F-USER>\\S+</F-USER> from <HOST>
            ^(?i)shouting from <HOST>
            ^%(greeting)s from <HOST>
mdre-normal =
mdre-aggressive = ^Probe from <HOST>
mode = normal
ignoreregex = from 192\\.0\\.2\\.99
`,
);

const classify = (rule: ReturnType<typeof loadFail2banFilter>, line: string) => compileRule(rule).test(line);

describe('fail2ban filter.d loader', () => {
  it('interpolates includes, [Init], %(x)s and <tags>; translates F-tags, conditionals and (?i)', () => {
    const rule = loadFail2banFilter(APP);
    expect(rule.name).toBe('app');
    expect(rule.origin).toBe(APP);
    expect(classify(rule, 'host appd[1]: Auth failure for bob from 192.0.2.1 port 22')).toMatchObject({
      kind: 'fail',
      ip: '192.0.2.1',
      fields: { user: 'bob' },
    });
    // The conditional: "invalid user" must end with ": invalid", otherwise with ": valid".
    expect(classify(rule, 'appd: Failed password for invalid user eve from 192.0.2.2: invalid').ip).toBe(
      '192.0.2.2',
    );
    expect(classify(rule, 'appd: Failed password for eve from 192.0.2.3: valid').ip).toBe('192.0.2.3');
    expect(classify(rule, 'appd: Failed password for invalid user eve from 192.0.2.2: valid').kind).toBe(
      'none',
    );
    expect(classify(rule, 'appd: SHOUTING FROM 192.0.2.4').ip).toBe('192.0.2.4');
    expect(classify(rule, 'appd: hello from 192.0.2.5').ip).toBe('192.0.2.5');
    // Wrong daemon: the prefregex does not match.
    expect(classify(rule, 'host other[1]: Auth failure for bob from 192.0.2.1').kind).toBe('none');
  });

  it('<F-NOFAIL> lines never count, <F-MLFGAINED> forgives, ignoreregex sees the whole line', () => {
    const rule = loadFail2banFilter(APP);
    expect(classify(rule, 'appd: Failed publickey for bob from 192.0.2.6: valid').kind).not.toBe('fail');
    expect(classify(rule, 'appd: Connection from 192.0.2.7').kind).not.toBe('fail');
    expect(classify(rule, 'appd: Accepted password for bob from 192.0.2.8')).toMatchObject({
      kind: 'good',
      ip: '192.0.2.8',
    });
    expect(classify(rule, 'appd: Auth failure for bob from 192.0.2.99').kind).toBe('ignored');
  });

  it('mode: the file default, overridden by the caller (as a jail does with filter = app[mode=...])', () => {
    expect(classify(loadFail2banFilter(APP), 'appd: Probe from 192.0.2.9').kind).toBe('none');
    expect(classify(loadFail2banFilter(APP, { mode: 'aggressive' }), 'appd: Probe from 192.0.2.9').ip).toBe(
      '192.0.2.9',
    );
    expect(
      classify(loadFail2banFilter(APP, { vars: { greeting: 'hi' } }), 'appd: hi from 192.0.2.5').ip,
    ).toBe('192.0.2.5');
  });

  it('a user name that contains "from <address>" cannot move the ban to that address', () => {
    const rule = loadFail2banFilter(APP);
    const r = classify(rule, 'appd: Failed password for from 127.0.0.1 from 192.0.2.10: valid');
    expect(r.ip === undefined || r.ip === '192.0.2.10').toBe(true);
  });

  it('counts through the engine: maxretry failures in findtime ban', () => {
    const rule = loadFail2banFilter(APP, { maxretry: 3, findtime: 60, bantime: 120 });
    const engine = new Engine([rule], { clock: 'log', ignoreSources: true });
    const events = [1, 2, 3].flatMap((s) =>
      engine.feed({
        text: `2026-01-01T00:00:0${s}Z web appd[9]: Auth failure for bob from 198.51.100.7`,
        source: 'x',
      }),
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'ban', hits: 3, duration: 120, rule: 'app' });
    expect(events[0]!.target.text).toBe('198.51.100.7');
  });

  it('datepattern: mapped to a regex that cuts the date as fail2ban does', () => {
    const f = readFail2banFilter(APP);
    expect(f.datePatterns).not.toBeNull();
    const dates = compileDatePatterns(translateDatePattern('^%%Y-%%m-%%d %%H:%%M:%%S'.replace(/%%/g, '%')));
    expect(cutDate('2024-01-02 03:04:05 rest', dates)).toBe(' rest');
    expect(cutDate('[Sat Jun 01 12:00:00 2024] [error] x', compileDatePatterns(null))).toBe('[] [error] x');
    expect(() => translateDatePattern('%Q')).toThrow(/%Q/);
  });

  it('unsupported or broken filters fail with one error naming file, line and key', () => {
    const lines = tmp.write(
      'lines.conf',
      '[Definition]\nfailregex = ^a <HOST><SKIPLINES>^b$\nmaxlines = lots\n',
    );
    expect(() => loadFail2banFilter(lines)).toThrow(`${lines}:3: maxlines: maxlines must be a whole number`);
    const atomic = tmp.write(
      'atomic.conf',
      '[Definition]\n# comment\nfailregex = ^ok <HOST>$\n            ^(?>bad) <HOST>\n',
    );
    expect(() => loadFail2banFilter(atomic)).toThrow(
      `${atomic}:3: failregex[1]: cannot translate regex: atomic groups`,
    );
    const noDef = tmp.write('nodef.conf', '[Init]\nx = 1\n');
    expect(() => loadFail2banFilter(noDef)).toThrow(`${noDef}: no [Definition] section`);
    const noHost = tmp.write('nohost.conf', '[Definition]\nfailregex = ^no address here$\n');
    expect(() => loadFail2banFilter(noHost)).toThrow(/no failregex that captures an address/);
    const loop = tmp.write('tagloop.conf', '[Definition]\nfailregex = ^<loop> <HOST>$\nloop = x<loop>\n');
    expect(() => loadFail2banFilter(loop)).toThrow(
      `${loop}:2: failregex: <loop> keeps expanding into itself`,
    );
    const dns = tmp.write('dns.conf', '[Definition]\nfailregex = ^x <DNS>$\n');
    expect(() => loadFail2banFilter(dns)).toThrow(
      `${dns}:2: failregex: filter has no failregex that captures`,
    );
  });

  it('back-references (refused by the engine) are loosened to a copy of their group, with a note', () => {
    const f = tmp.write(
      'backref.conf',
      '[Definition]\nfailregex = ^(?P<code>\\d+): err (?P=code) from <HOST>$\n',
    );
    const loaded = readFail2banFilter(f);
    expect(loaded.notes.join()).toMatch(/back-reference/);
    expect(compileRule(loaded.rule).test('12: err 12 from 192.0.2.1').ip).toBe('192.0.2.1');
  });
});

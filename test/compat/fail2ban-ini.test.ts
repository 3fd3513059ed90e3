import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFail2banIni, readFail2banConfig } from '../../src/compat/fail2ban-ini.js';
import { ConfigError } from '../../src/core/errors.js';
import { tempDir } from './tmp.js';

const tmp = tempDir('f2b-ini');

describe('fail2ban INI reader', () => {
  it('reads sections, multi-line values, comments and case-insensitive option names', () => {
    const f = tmp.write(
      'basic.conf',
      [
        '# a comment',
        '; another',
        '[Definition]',
        'FailRegex = ^first <HOST>$',
        '            ^second <HOST>$',
        '  # a comment line inside the value is skipped',
        '',
        '            ^third after a blank line',
        'ignoreregex =',
        'inline = value ; comment after whitespace',
        'hash = keep # this, fail2ban has no inline # comments',
        'colon: also a delimiter',
      ].join('\n'),
    );
    const cfg = readFail2banConfig(f);
    expect(cfg.get('Definition', 'failregex')).toBe(
      '^first <HOST>$\n^second <HOST>$\n\n^third after a blank line',
    );
    expect(cfg.get('Definition', 'ignoreregex')).toBe('');
    expect(cfg.get('Definition', 'inline')).toBe('value');
    expect(cfg.get('Definition', 'hash')).toBe('keep # this, fail2ban has no inline # comments');
    expect(cfg.get('Definition', 'colon')).toBe('also a delimiter');
    expect(cfg.get('Definition', 'missing')).toBeUndefined();
  });

  it('resolves [INCLUDES] before/after relative to the including file, .local overrides and [DEFAULT]', () => {
    const d = join(tmp.dir, 'inc');
    mkdirSync(join(d, 'filter.d'), { recursive: true });
    tmp.write(
      'inc/filter.d/common.conf',
      '[INCLUDES]\nafter = common.local\n[DEFAULT]\n_daemon = \\S*\nprefix = <%(_daemon)s>\n',
    );
    tmp.write('inc/filter.d/late.conf', '[Definition]\nlate = from after\norder = after wins\n');
    tmp.write(
      'inc/filter.d/app.conf',
      '[INCLUDES]\nbefore = common.conf\nafter = late.conf\n[DEFAULT]\n_daemon = app\n[Definition]\nre = %(prefix)s failed\norder = file\nlocal = no\n',
    );
    tmp.write('inc/filter.d/app.local', '[Definition]\nlocal = yes\n');
    const cfg = readFail2banConfig(join(d, 'filter.d/app.conf'));
    // The file's own [DEFAULT] overrides the included one, interpolation sees the merged result.
    expect(cfg.get('Definition', 're')).toBe('<app> failed');
    expect(cfg.get('Definition', 'local')).toBe('yes');
    expect(cfg.get('Definition', 'late')).toBe('from after');
    expect(cfg.get('Definition', 'order')).toBe('after wins');
    // fail2ban's order: a file's `before`, the file, its `after`, then its .local (with its own).
    expect(cfg.files.map((p) => p.split('/').pop())).toEqual([
      'common.conf',
      'app.conf',
      'late.conf',
      'app.local',
    ]);
  });

  it('interpolates %(section/name)s, %(known/name)s, %% and caller vars', () => {
    const f = tmp.write(
      'interp.conf',
      [
        '[DEFAULT]',
        'prefix = base',
        '[lt_file]',
        'prefix = file-%(mode)s',
        '[Definition]',
        'mode = normal',
        'a = %(lt_file/prefix)s',
        'pct = 100%%',
        'm = %(mode)s',
      ].join('\n'),
    );
    tmp.write(
      'interp.local',
      '[DEFAULT]\nprefix = %(known/prefix)s+local\n[Definition]\nmode = %(known/mode)s-local\n',
    );
    const cfg = readFail2banConfig(f);
    expect(cfg.get('Definition', 'pct')).toBe('100%');
    expect(cfg.get('Definition', 'm')).toBe('normal-local');
    expect(cfg.get('Definition', 'm', { mode: 'aggressive' })).toBe('aggressive');
    expect(cfg.get('Definition', 'prefix')).toBe('base+local');
    // `lt_file/prefix` is interpolated in [lt_file]; `mode` lives in [Definition], so vars supply it.
    expect(cfg.get('Definition', 'a', { mode: 'x' })).toBe('file-x');
  });

  it('bad input names the file and line', () => {
    const bad = tmp.write('bad.conf', '[Definition]\nfailregex = ok\nthis line has no delimiter\n');
    expect(() => readFail2banConfig(bad)).toThrow(ConfigError);
    expect(() => readFail2banConfig(bad)).toThrow(`${bad}:3:`);
    expect(() => parseFail2banIni('key = v\n', 'x.conf')).toThrow(
      'x.conf:1: key: option before the first [section] header',
    );
    expect(() => parseFail2banIni('[a]\nk = 1\nK = 2\n', 'x.conf')).toThrow(
      'x.conf:3: k: option appears twice',
    );
    const loop = tmp.write('loop.conf', '[Definition]\na = %(b)s\nb = %(a)s\n');
    expect(() => readFail2banConfig(loop).get('Definition', 'a')).toThrow(
      /loop\.conf:3: b: %\(a\)s refers back to itself/,
    );
    const lone = tmp.write('lone.conf', '[Definition]\n\nx = 50% off\n');
    expect(() => readFail2banConfig(lone).get('Definition', 'x')).toThrow(`${lone}:3: x: a lone "%"`);
    const undef = tmp.write('undef.conf', '[Definition]\nx = %(nope)s\n');
    expect(() => readFail2banConfig(undef).get('Definition', 'x')).toThrow(
      `${undef}:2: x: %(nope)s is not defined`,
    );
    const missing = tmp.write('missing.conf', '[INCLUDES]\nbefore = nothere.conf\n[Definition]\nx = 1\n');
    expect(() => readFail2banConfig(missing)).toThrow(`${missing}:2: INCLUDES: included file not found`);
    expect(() => readFail2banConfig(join(tmp.dir, 'absent.conf'))).toThrow('absent.conf: file not found');
  });

  it('a missing .local include is normal and an include loop is broken', () => {
    const a = tmp.write(
      'loop-a.conf',
      '[INCLUDES]\nbefore = loop-b.conf\nafter = loop-a2.local\n[Definition]\nx = a\n',
    );
    tmp.write('loop-b.conf', '[INCLUDES]\nbefore = loop-a.conf\n[Definition]\ny = b\n');
    const cfg = readFail2banConfig(a);
    expect(cfg.get('Definition', 'x')).toBe('a');
    expect(cfg.get('Definition', 'y')).toBe('b');
  });
});

import { describe, expect, it } from 'vitest';
import { captureMap, withoutCaptures } from '../../src/detect/capture-map.js';
import { Engine } from '../../src/detect/engine.js';
import type { MultilineSpec, RuleSpec } from '../../src/detect/rule.js';

// A session-keyed log in the shape of sshd's: `conn ID: message`, where only some messages carry
// the client's address. Helper groups as fail2ban's loader produces them (src/compat).
const SESSIONS: MultilineSpec = {
  maxlines: 1,
  prefregex: String.raw`^conn (?<mlfid>\d+): (?<content>.+)$`,
  failregex: [
    '^(?<nofail>open) from <HOST>$',
    String.raw`^(?<nofail>try) user (?<user>\S+)$`,
    '^bad password$',
    '^(?<nofail>(?<mlfforget>closed))$',
    '^(?<mlfforget>reset)$',
    String.raw`^(?<mlfforget>(?<mlfgained>accepted)) user (?<user>\S+)$`,
  ],
  ignoreregex: [],
};

function rule(multiline: MultilineSpec): RuleSpec {
  return {
    name: 'ml',
    sources: [],
    patterns: [],
    ignore: [],
    good: [],
    maxretry: 1000,
    findtime: 600,
    bantime: 600,
    ignoreNets: [],
    set: 'blocklist',
    multiline,
  };
}

/** Feeds lines (text, optional source and log time in s) and returns what each one amounted to. */
function run(spec: MultilineSpec, lines: (string | [string, string, number?])[]): string[] {
  let got = 'none';
  const engine = new Engine([rule(spec)], {
    clock: 'log',
    ignoreSources: true,
    onMatch: (m) => {
      got = `${m.kind} ${m.ip}`;
    },
  });
  return lines.map((l) => {
    const [text, source, at] = typeof l === 'string' ? [l, 'log', 1000] : l;
    got = 'none';
    engine.feed({ text, source, time: (at ?? 1000) * 1000 });
    return got;
  });
}

describe('detect - multi-line stage (fail2ban maxlines and <F-MLFID> sessions)', () => {
  it('a failure without an address takes the address its session saw', () => {
    expect(
      run(SESSIONS, ['conn 1: open from 192.0.2.1', 'conn 1: bad password', 'conn 2: bad password']),
    ).toEqual(['none', 'fail 192.0.2.1', 'none']);
  });

  it('a failure seen before the address counts when the address shows (pending), once', () => {
    expect(
      run(SESSIONS, ['conn 2: bad password', 'conn 2: open from 192.0.2.2', 'conn 2: try user a']),
    ).toEqual(['none', 'fail 192.0.2.2', 'none']);
  });

  it('a successful login forgives the session address; a second user on the session makes it a failure', () => {
    expect(
      run(SESSIONS, ['conn 3: open from 192.0.2.3', 'conn 3: try user a', 'conn 3: accepted user a']),
    ).toEqual(['none', 'none', 'good 192.0.2.3']);
    expect(
      run(SESSIONS, ['conn 4: open from 192.0.2.4', 'conn 4: try user a', 'conn 4: accepted user b']),
    ).toEqual(['none', 'none', 'fail 192.0.2.4']);
  });

  it('MLFFORGET drops the session: later lines of that id know no address', () => {
    expect(run(SESSIONS, ['conn 5: open from 192.0.2.5', 'conn 5: closed', 'conn 5: bad password'])).toEqual([
      'none',
      'none',
      'none',
    ]);
    // Without NOFAIL the forgetting line itself is a failure of the session's address.
    expect(run(SESSIONS, ['conn 5: open from 192.0.2.5', 'conn 5: reset', 'conn 5: bad password'])).toEqual([
      'none',
      'fail 192.0.2.5',
      'none',
    ]);
  });

  it('sessions expire by log time and the oldest are dropped beyond the cap', () => {
    expect(
      run(SESSIONS, [
        ['conn 6: open from 192.0.2.6', 'log', 1000],
        ['conn 6: bad password', 'log', 1301],
      ]),
    ).toEqual(['none', 'none']);
    const capped = { ...SESSIONS, sessions: 2 };
    expect(
      run(capped, [
        'conn 7: open from 192.0.2.7',
        'conn 8: open from 192.0.2.8',
        'conn 9: open from 192.0.2.9',
        'conn 7: bad password',
        'conn 9: bad password',
      ]),
    ).toEqual(['none', 'none', 'none', 'none', 'fail 192.0.2.9']);
  });

  it('maxlines buffers lines per source; <SKIPLINES> steps over lines, which stay for later matches', () => {
    const spec: MultilineSpec = {
      maxlines: 3,
      failregex: [String.raw`^start <HOST>\n(?<skiplines0>(?:(?:.*\n)*?))end$`],
      ignoreregex: [],
    };
    expect(
      run(spec, [
        ['start 192.0.2.10', 'a'],
        ['end', 'b'],
        ['noise', 'a'],
        ['end', 'a'],
        ['end', 'a'],
      ]),
    ).toEqual(['none', 'none', 'none', 'fail 192.0.2.10', 'none']);
    // Beyond 64 KiB of buffered text the oldest lines go (hostile long lines stay cheap).
    const wide = { ...spec, maxlines: 8 };
    const long = 'x'.repeat(15_000);
    expect(run(wide, ['start 192.0.2.12', long, long, long, long, long, 'end']).at(-1)).toBe('none');
    expect(run(wide, ['start 192.0.2.13', long, long, long, 'end']).at(-1)).toBe('fail 192.0.2.13');
    // Beyond maxlines the first line is gone.
    expect(run(spec, ['start 192.0.2.11', 'x', 'y', 'end'])).toEqual(['none', 'none', 'none', 'none']);
  });

  it('an ignoreregex on the matched lines drops the match', () => {
    const spec: MultilineSpec = {
      maxlines: 2,
      failregex: [String.raw`^login <HOST>\nfailed$`],
      ignoreregex: [String.raw`^login 192\.0\.2\.99$`],
    };
    expect(run(spec, ['login 192.0.2.99', 'failed', 'login 192.0.2.12', 'failed'])).toEqual([
      'none',
      'none',
      'none',
      'fail 192.0.2.12',
    ]);
  });

  it('named groups become plain captures with their indices kept (classes and escapes left alone)', () => {
    const map = captureMap(
      String.raw`^(a)(?<user>\S+) [(?<x>)] \(?<y> (?:n)(?<ip>\d+)(?<alt_user_2>.)(?<alt_user>.)(?=z)`,
    );
    expect(map.source).toBe(String.raw`^(a)(\S+) [(?<x>)] \(?<y> (?:n)(\d+)(.)(.)(?=z)`);
    expect([...map.names]).toEqual([
      ['user', 2],
      ['ip', 3],
      ['alt_user_2', 4],
      ['alt_user', 5],
    ]);
    expect(map.addresses).toEqual([3]);
    expect(map.altUsers).toEqual([5, 4]);
    expect(withoutCaptures('^(a)(?<u>b)(?:c)(?=d)')).toBe('^(?:a)(?:b)(?:c)(?=d)');
  });

  it('unanchored failregexes are tried one by one in order (no merged regex)', () => {
    const spec: MultilineSpec = {
      maxlines: 1,
      failregex: ['denied <HOST>', '^x (?<nofail>n) <HOST>'],
      ignoreregex: [],
    };
    expect(run(spec, ['x n 192.0.2.20', 'x y denied 192.0.2.21'])).toEqual(['none', 'fail 192.0.2.21']);
  });
});

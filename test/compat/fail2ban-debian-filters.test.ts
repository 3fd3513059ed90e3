import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fail2banLineAdapter } from '../../src/compat/fail2ban-date.js';
import { readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { ConfigError } from '../../src/core/errors.js';
import { compileRule } from '../../src/detect/compile.js';
import { Engine } from '../../src/detect/engine.js';
import { requirements } from '../helpers/requirements.js';

const DIR = '/etc/fail2ban/filter.d';
const req = requirements('fail2ban filter.d from Debian', [`file:${DIR}/sshd.conf`]);

// Files that are not filters (only included by others) and filters rampart cannot run, with why.
export const INCLUDE_ONLY = [
  'common.conf',
  'apache-common.conf',
  'botsearch-common.conf',
  'exim-common.conf',
  'selinux-common.conf',
];
// (None since multi-line filters run in the engine's multi-line stage.)
export const UNSUPPORTED: Record<string, RegExp> = {};

describe.skipIf(req.skip)('fail2ban - every Debian filter.d file', () => {
  const files = req.skip
    ? []
    : readdirSync(DIR).filter((f) => f.endsWith('.conf') && !INCLUDE_ONLY.includes(f));
  const results: string[] = [];
  for (const file of files) {
    it(`${file} loads and compiles${UNSUPPORTED[file] ? ' (or fails clearly: unsupported)' : ''}`, () => {
      const load = () => {
        const f = readFail2banFilter(join(DIR, file));
        compileRule(f.rule);
        // The engine also compiles the multi-line stage of filters that need one.
        new Engine([f.rule], { clock: 'log', onWarning: () => {} });
        return f;
      };
      if (UNSUPPORTED[file]) {
        expect(load).toThrow(ConfigError);
        expect(load).toThrow(UNSUPPORTED[file]!);
        return;
      }
      const f = load();
      results.push(`${file}: ${f.rule.patterns.length} patterns`);
      expect(f.rule.patterns.length + (f.rule.multiline?.failregex.length ?? 0)).toBeGreaterThan(0);
    });
  }
});

describe.skipIf(req.skip)("fail2ban - Debian's sshd filter against attacker-written user names", () => {
  it('a user name containing "from 127.0.0.1" never moves the failure to that address', () => {
    const rule = compileRule(readFail2banFilter(join(DIR, 'sshd.conf'), { mode: 'aggressive' }).rule);
    const lines = [
      'host sshd[1]: Failed password for invalid user x from 127.0.0.1 from 192.0.2.1 port 22 ssh2',
      'host sshd[1]: Failed password for x from 127.0.0.1 port 1 ssh2 from 192.0.2.1 port 22 ssh2',
      'host sshd[1]: Invalid user from 127.0.0.1 from 192.0.2.1 port 22',
      'host sshd[1]: Disconnected from invalid user a from 127.0.0.1 192.0.2.1 port 22 [preauth]',
    ];
    for (const line of lines) {
      const r = rule.test(line);
      expect(r.ip === undefined || r.ip === '192.0.2.1', `${line} -> ${r.ip}`).toBe(true);
    }
    expect(rule.test(lines[0]!).ip).toBe('192.0.2.1');
  });
});

describe.skipIf(req.skip)('fail2ban - how a prefregex is honoured', () => {
  it('sshd keeps it for the engine (addresses in the content); apache folds it in (address in the prefix)', () => {
    const sshd = readFail2banFilter(join(DIR, 'sshd.conf')).rule;
    expect(sshd.prefregex).toMatch(/\(\?<content>/);
    expect(sshd.patterns.every((p) => !p.includes('__prefix') && p.startsWith('^'))).toBe(true);
    const apache = readFail2banFilter(join(DIR, 'apache-auth.conf')).rule;
    expect(apache.prefregex).toBeUndefined();
    expect(apache.patterns.every((p) => p.includes('\\[client <HOST>'))).toBe(true);
    expect(compileRule(apache).test('[] [error] [client 192.0.2.5] user bob not found: /x').ip).toBe(
      '192.0.2.5',
    );
  });
});

describe.skipIf(req.skip)(
  'fail2ban - loaded filters through the engine on logs without a syslog date',
  () => {
    const replay = (filter: string, lines: string[]) => {
      const f = readFail2banFilter(join(DIR, `${filter}.conf`), { maxretry: 3 });
      const adapt = fail2banLineAdapter(f.datePatterns);
      const engine = new Engine([f.rule], { clock: 'log', ignoreSources: true });
      return lines.flatMap((text) => engine.feed(adapt({ text, source: 'x' })));
    };

    it('nginx error log: the date is cut and its time used', () => {
      const line = (s: number) =>
        `2024/03/01 10:00:0${s} [error] 12#12: *3 user "admin": password mismatch, client: 203.0.113.9, server: x, request: "GET / HTTP/1.1", host: "x"`;
      const events = replay('nginx-http-auth', [1, 2, 3].map(line));
      expect(events).toHaveLength(1);
      expect(events[0]!.target.text).toBe('203.0.113.9');
      expect(new Date(events[0]!.at).toISOString()).toBe(new Date('2024/03/01 10:00:03').toISOString());
    });

    it('apache error log: [date] becomes [] as the filter expects', () => {
      const line = (s: number) =>
        `[Sat Jun 01 12:00:0${s} 2024] [error] [client 198.51.100.20] user bob not found: /private`;
      const events = replay('apache-auth', [1, 2, 3].map(line));
      expect(events.map((e) => e.target.text)).toEqual(['198.51.100.20']);
    });

    it('a leading syslog date is cut as fail2ban cuts it: the blank after it stays, its time is kept', () => {
      const adapt = fail2banLineAdapter(readFail2banFilter(join(DIR, 'sshd.conf')).datePatterns);
      const got = adapt({
        text: 'Nov 21 00:00:00 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2',
        source: 'x',
        time: 1_700_000_000_000,
      });
      expect(got.text).toBe(' web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2');
      expect(got.time).toBe(1_700_000_000_000);
    });

    it('exim: a filter that needs the blank after an ISO date bans (it matched nothing before)', () => {
      const line = (s: number) =>
        `2024-03-01 10:00:0${s} login authenticator failed for (x) [203.0.113.7]: 535 Incorrect authentication data (set_id=bob)`;
      const events = replay('exim', [1, 2, 3].map(line));
      expect(events.map((e) => e.target.text)).toEqual(['203.0.113.7']);
      expect(new Date(events[0]!.at).toISOString()).toBe(new Date('2024-03-01 10:00:03').toISOString());
    });
  },
);

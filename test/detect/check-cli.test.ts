import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';

const debianFilter = requirements('check --fail2ban-filter (Debian sshd filter)', [
  'file:/etc/fail2ban/filter.d/sshd.conf',
]);
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rampart-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], input?: string) {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const r = spawnSync(process.execPath, [CLI, 'check', ...args], {
    input,
    encoding: 'utf8',
    timeout: 30_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const attack = (ip: string, n: number, startSec = 0) =>
  Array.from({ length: n }, (_, i) => {
    const s = String(startSec + i).padStart(2, '0');
    return `Nov 21 13:15:${s} web1 sshd[42]: Failed password for invalid user admin from ${ip} port 4000${i} ssh2`;
  }).join('\n');

/** RFC 3164 has no year: this year, or last year when that would be in the future. */
function syslogTime(month: number, day: number, h: number, m: number, s: number): Date {
  const year = new Date().getFullYear();
  const d = new Date(year, month, day, h, m, s);
  return d.getTime() > Date.now() + 86_400_000 ? new Date(year - 1, month, day, h, m, s) : d;
}

describe('rampart check', () => {
  const log = write(
    'auth.log',
    [
      attack('192.0.2.10', 5),
      'Nov 21 13:16:00 web1 CRON[7]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)',
      attack('198.51.100.20', 2, 10),
    ].join('\n'),
  );

  it('--json prints a ban per ban, then one summary, with the documented fields', () => {
    const r = run(['--json', log]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const objs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs).toHaveLength(2);
    const [ban, summary] = objs;
    expect(ban).toEqual({
      type: 'ban',
      ip: '192.0.2.10',
      rule: 'sshd',
      at: syslogTime(10, 21, 13, 15, 4).toISOString(),
      hits: 5,
      duration: 600,
    });
    expect(summary).toMatchObject({ type: 'summary', lines: 8, matched: 7, bans: 1 });
    expect(typeof summary.seconds).toBe('number');
    expect(typeof summary.linesPerSecond).toBe('number');
  });

  it('--matches adds one object per matched line with its line number', () => {
    const r = run(['--json', '--matches', '--rule', 'sshd', log]);
    const matches = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((o) => o.type === 'match');
    expect(matches).toHaveLength(7);
    expect(matches[0]).toMatchObject({ type: 'match', line: 1, ip: '192.0.2.10', rule: 'sshd' });
    expect(matches[6]).toMatchObject({ line: 8, ip: '198.51.100.20' });
  });

  it('reads standard input with -', () => {
    const r = run(['--json', '-'], `${attack('203.0.113.5', 6)}\n`);
    expect(r.code).toBe(0);
    const objs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs.filter((o) => o.type === 'ban').map((o) => o.ip)).toEqual(['203.0.113.5']);
    expect(objs.at(-1)).toMatchObject({ type: 'summary', lines: 6, matched: 6 });
  });

  it('without --json prints a readable table', () => {
    const r = run([log]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/TIME\s+RULE\s+ADDRESS\s+HITS\s+BAN/);
    expect(r.stdout).toMatch(/sshd\s+192\.0\.2\.10\s+5\s+10m/);
    expect(r.stdout).toMatch(/Lines: 8, matched: 7, bans: 1/);
  });

  it('a table of 150,000 bans is printed whole, columns sized by the first rows', () => {
    // Sizing the columns over every ban once took a spread of all rows: past about 120,000 the
    // table crashed with a RangeError instead of printing.
    const rules = write(
      'one.yaml',
      `rules:\n  - name: one\n    patterns: ['^\\S+ \\S+: bad <HOST>$']\n    maxretry: 1\n`,
    );
    const lines = Array.from({ length: 150_000 }, (_, i) => {
      const ip =
        i < 1_000
          ? `10.0.${i >> 8}.${i & 255}`
          : `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`;
      return `Nov 21 13:15:00 h app: bad ${ip}`;
    });
    const r = run(['--rules', rules, write('many-bans.log', `${lines.join('\n')}\n`)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    const header = out.findIndex((l) => /^TIME\s+RULE\s+ADDRESS/.test(l));
    expect(out.filter((l) => / one {2}/.test(l))).toHaveLength(150_000);
    // The first 1,000 rows (short IPv4 addresses) set the ADDRESS column; a longer one later
    // only shifts its own line.
    expect(out[header]).toBe(
      `${'TIME'.padEnd(24)}  RULE  ${'ADDRESS'.padEnd('10.0.0.100'.length)}  HITS  BAN`,
    );
    expect(out.at(-3)).toMatch(/^Lines: 150000, matched: 150000, bans: 150000,/);
  });

  it('--aggressive counts failed public keys', () => {
    const pk = Array.from(
      { length: 5 },
      (_, i) =>
        `Nov 21 13:15:0${i} web1 sshd[1]: Failed publickey for root from 192.0.2.44 port 5${i} ssh2: RSA SHA256:abc`,
    ).join('\n');
    const p = write('pk.log', pk);
    const normal = JSON.parse(run(['--json', p]).stdout.trim().split('\n').at(-1)!);
    const aggressive = run(['--json', '--aggressive', p])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(normal).toMatchObject({ matched: 0, bans: 0 });
    expect(aggressive[0]).toMatchObject({ type: 'ban', ip: '192.0.2.44' });
  });

  it('--rules FILE uses a native rules file', () => {
    const rules = write(
      'rules.yaml',
      `rules:\n  - name: mine\n    patterns: ['^\\S+ \\S+: bad <HOST>$']\n    maxretry: 2\n`,
    );
    const p = write(
      'mine.log',
      'Nov 21 13:15:00 h app: bad 192.0.2.9\nNov 21 13:15:01 h app: bad 192.0.2.9\n',
    );
    const objs = run(['--json', '--rules', rules, p])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs[0]).toMatchObject({ type: 'ban', ip: '192.0.2.9', rule: 'mine', hits: 2 });
  });

  it("--fail2ban-filter runs Debian's sshd filter", { skip: debianFilter.skip }, () => {
    const r = run(['--json', '--fail2ban-filter', '/etc/fail2ban/filter.d/sshd.conf', log]);
    expect(r.code).toBe(0);
    const objs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs[0]).toMatchObject({ type: 'ban', ip: '192.0.2.10', rule: 'sshd', hits: 5 });
    expect(objs.at(-1)).toMatchObject({ type: 'summary', lines: 8, matched: 7, bans: 1 });
  });

  it('a bad fail2ban filter is one clear line and exit 2', () => {
    const bad = write('bad-filter.conf', '[Definition]\nfailregex = ^(unclosed <HOST>\n');
    const r = run(['--fail2ban-filter', bad, log]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(bad);
  });

  it('a bad rules file is one line naming file:line:key and exit 2', () => {
    const bad = write('bad.yaml', `rules:\n  - name: x\n    patterns: ['^(<HOST>$']\n`);
    const r = run(['--rules', bad, log]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${bad}:3: rules.0.patterns.0`);
  });

  it('--builtin --rules runs both; a slow user rule is stopped on long lines and reported, never banning the victim', () => {
    const rules = write(
      'slow.yaml',
      `rules:\n  - name: evil\n    allowSlowPatterns: true\n    patterns: ['(.*a){12}<HOST>']\n`,
    );
    // About a second each for the user rule without the budget; the client is 203.0.113.5.
    const long = (i: number) =>
      `Nov 21 13:15:0${i} web1 sshd[42]: Invalid user ${'b'.repeat(16_000)} from 198.51.100.7 from 203.0.113.5 port 22`;
    const p = write('long.log', `${[0, 1, 2, 3, 4, 5].map(long).join('\n')}\n`);
    const r = run(['--json', '--builtin', '--rules', rules, p]);
    expect(r.code).toBe(0);
    const objs = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs.filter((o) => o.type === 'ban').map((o) => [o.rule, o.ip])).toEqual([
      ['sshd', '203.0.113.5'],
    ]);
    expect(objs.at(-1)).toMatchObject({ type: 'summary', lines: 6, overBudget: 3, overBudgetSkipped: 3 });
    expect(r.stderr).toMatch(
      /rule "evil" \(.*slow\.yaml#evil\): .*no longer matched against lines over 1024/,
    );
    expect(run(['--builtin', p]).stderr).toMatch(/--builtin goes with --rules/);
  });

  it('usage errors exit 2: unknown rule, two rule sources', () => {
    expect(run(['--rule', 'nope', log]).code).toBe(2);
    const both = run(['--rule', 'sshd', '--rules', 'x.yaml', log]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/only one of/);
  });

  it('a missing log is one clear line and exit 2 (the operator gave a wrong path)', () => {
    const r = run([join(dir, 'missing.log')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^rampart: cannot read .*missing\.log: no such file \(ENOENT\)\n$/);
  });

  it('hostile bytes in the log neither crash nor mis-attribute', () => {
    const p = join(dir, 'hostile.log');
    writeFileSync(
      p,
      Buffer.concat([
        Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a]),
        Buffer.from(
          `${attack('192.0.2.77', 5).replaceAll('invalid user admin', 'invalid user x from 127.0.0.1 port 22 ssh2')}\n`,
        ),
        Buffer.from('x'.repeat(1 << 20)),
      ]),
    );
    const objs = run(['--json', p])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(objs.filter((o) => o.type === 'ban').map((o) => o.ip)).toEqual(['192.0.2.77']);
    expect(objs.at(-1)).toMatchObject({ lines: 7, matched: 5 });
  });
});

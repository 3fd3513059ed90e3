import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateAuthLog } from '../../bench/gen-auth-log.js';
import { fail2banLineAdapter } from '../../src/compat/fail2ban-date.js';
import { readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { Engine } from '../../src/detect/engine.js';
import { requirements } from '../helpers/requirements.js';
import { tempDir } from './tmp.js';

const FILTERS = '/etc/fail2ban/filter.d';
const SAMPLES = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs';
const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const req = requirements('fail2ban-regex as a peer', [
  'cmd:fail2ban-regex',
  `file:${FILTERS}/sshd.conf`,
  `file:${SAMPLES}/slapd`,
]);

/** fail2ban-regex's failures, in order: one address per line it counts (`-o id`; helpers excluded). */
function fail2banFailures(log: string, filter: string): string[] {
  const out = execFileSync('fail2ban-regex', ['-o', 'id', log, filter], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  return out.split('\n').filter(Boolean);
}

/** rampart's failures on the same log, in order, through the `rampart check --fail2ban-filter` path. */
function rampartFailures(log: string, filter: string, vars: Record<string, string> = {}): string[] {
  const f = readFail2banFilter(filter, { vars });
  const adapt = fail2banLineAdapter(f.datePatterns);
  const found: string[] = [];
  const engine = new Engine([f.rule], {
    clock: 'log',
    ignoreSources: true,
    onWarning: () => {},
    onMatch: (m) => {
      if (m.kind === 'fail') found.push(m.ip);
    },
  });
  for (const text of readFileSync(log, 'utf8').split('\n').filter(Boolean))
    engine.feed(adapt({ text, source: log }));
  return found;
}

/**
 * A longer log made of a filter's own sample lines: the file's lines (comments dropped) repeated,
 * each repetition with its IPv4 addresses moved into 203.0.113.0/24, so multi-line sessions and
 * buffers are exercised with many addresses, in the order the samples interleave them.
 */
function sampleLog(dir: string, name: string, reps: number): string {
  const lines = readFileSync(join(SAMPLES, name), 'utf8')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));
  const out: string[] = [];
  for (let r = 0; r < reps; r++) {
    for (const l of lines) {
      out.push(
        l.replace(
          /\b(\d{1,3})\.\d{1,3}\.\d{1,3}\.(\d{1,3})\b/g,
          (_, a, d) => `203.0.113.${((Number(a) + Number(d) + r * 7) % 254) + 1}`,
        ),
      );
    }
  }
  const path = join(dir, `${name}.log`);
  writeFileSync(path, `${out.join('\n')}\n`);
  return path;
}

/**
 * One deliberate difference: when a session saw an IPv4 address and a later line of it names an
 * IPv6 one, fail2ban keeps counting the IPv4 (its merged groups prefer `ip4`); rampart counts the
 * address the line names. (Real sshd sessions have one client; the generated log reuses process
 * ids across clients.) Every other failure is the same, in the same order.
 */
function expectSameButIpv6InIpv4Sessions(ours: string[], theirs: string[]): void {
  expect(ours.length).toBe(theirs.length);
  const differ = ours.flatMap((ip, i) => (ip === theirs[i] ? [] : [`${ip} (fail2ban: ${theirs[i]})`]));
  expect(differ.filter((d) => !/^[0-9a-f:]+:[0-9a-f:]* \(fail2ban: [\d.]+\)$/.test(d))).toEqual([]);
  expect(differ.length).toBeLessThan(theirs.length / 10);
}

describe.skipIf(req.skip)('fail2ban - loaded filters against fail2ban-regex on the same log', () => {
  const tmp = tempDir('f2b-peer');

  it('sshd (<F-MLFID> sessions, NOFAIL, GAINED): the same failures, same addresses, same order', async () => {
    const log = join(tmp.dir, 'auth.log');
    await generateAuthLog(log, { lines: 3000, seed: 7 });
    const filter = `${FILTERS}/sshd.conf`;
    const theirs = fail2banFailures(log, filter);
    const ours = rampartFailures(log, filter);
    expectSameButIpv6InIpv4Sessions(ours, theirs);
    // The same with the jail option `filter = sshd[mode=aggressive]` on both sides.
    const aggressive = fail2banFailures(log, `${filter}[mode=aggressive]`);
    expect(aggressive.length).toBeGreaterThan(theirs.length);
    expectSameButIpv6InIpv4Sessions(rampartFailures(log, filter, { mode: 'aggressive' }), aggressive);
    expect(theirs.length).toBeGreaterThan(500);
    // `rampart check --fail2ban-filter` (the CLI) counts the same failures.
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    const check = (...extra: string[]) => {
      const json = execFileSync(
        process.execPath,
        [CLI, 'check', '--json', ...extra, '--fail2ban-filter', filter, log],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        },
      );
      return JSON.parse(json.trim().split('\n').pop()!) as { matched: number; lines: number };
    };
    expect(check()).toMatchObject({ matched: theirs.length, lines: 3000 });
    expect(check('--aggressive')).toMatchObject({ matched: aggressive.length, lines: 3000 });
  });

  for (const [name, reps] of [
    ['slapd', 30],
    ['mongodb-auth', 30],
    ['ejabberd-auth', 30],
    ['sendmail-reject', 5],
  ] as const) {
    it(`${name} (multi-line): the same failures in the same order on its samples, repeated`, () => {
      const log = sampleLog(tmp.dir, name, reps);
      const filter = `${FILTERS}/${name}.conf`;
      const theirs = fail2banFailures(log, filter);
      expect(theirs.length).toBeGreaterThanOrEqual(reps);
      expect(rampartFailures(log, filter)).toEqual(theirs);
    });
  }
});

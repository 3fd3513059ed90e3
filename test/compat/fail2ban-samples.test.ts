import { existsSync, readdirSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { requirements } from '../helpers/requirements.js';
import { runSamples, type SampleResult } from './fail2ban-samples.js';

const FILTERS = '/etc/fail2ban/filter.d';
const LOGS = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs';
const req = requirements("fail2ban's own annotated sample logs", [
  `file:${FILTERS}/sshd.conf`,
  `file:${LOGS}/sshd`,
]);

// Every Debian filter with a sample file (measured: all of them agree on every annotated line,
// see docs/compat/fail2ban.md). Lines whose expected host is a name are fed but not judged:
// rampart never resolves names.
const filters = req.skip
  ? []
  : readdirSync(FILTERS)
      .filter((f) => f.endsWith('.conf'))
      .map((f) => f.slice(0, -5))
      .filter((f) => existsSync(`${LOGS}/${f}`));

describe.skipIf(req.skip)("fail2ban - Debian filters against fail2ban's annotated samples", () => {
  const results: SampleResult[] = [];
  afterAll(() => {
    const total = results.reduce((a, r) => [a[0]! + r.passed, a[1]! + r.checked, a[2]! + r.dns], [0, 0, 0]);
    const lines = results.map(
      (r) =>
        `${r.filter.padEnd(20)} ${r.passed}/${r.checked}${r.dns ? ` (+${r.dns} hostnames skipped)` : ''}`,
    );
    console.log(`${lines.join('\n')}\nTOTAL ${total[0]}/${total[1]} (+${total[2]} hostnames skipped)`);
  });

  it('covers the multi-line and session filters and most of filter.d', () => {
    expect(filters.length).toBeGreaterThan(80);
    for (const f of ['sshd', 'mongodb-auth', 'slapd', 'guacamole', 'ejabberd-auth', 'sendmail-reject'])
      expect(filters).toContain(f);
  });

  for (const filter of filters) {
    it(`${filter}: every annotated line gives fail2ban's verdict and address`, () => {
      const r = runSamples(FILTERS, LOGS, filter);
      results.push(r);
      expect(r.loadErrors).toEqual([]);
      expect(r.failures).toEqual([]);
      expect(r.passed).toBe(r.checked);
    });
  }
});

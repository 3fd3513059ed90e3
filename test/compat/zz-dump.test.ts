import { existsSync, readdirSync } from 'node:fs';
import { it } from 'vitest';
import { runSamples } from './fail2ban-samples.js';
const LOGS = '/usr/lib/python3/dist-packages/fail2ban/tests/files/logs';
it('dump', () => {
  const only = process.env.F?.split(',');
  let tc = 0, tp = 0;
  for (const f of readdirSync('/etc/fail2ban/filter.d').filter((x) => x.endsWith('.conf')).map((x) => x.slice(0, -5))) {
    if (!existsSync(`${LOGS}/${f}`) || (only && !only.includes(f))) continue;
    const r = runSamples('/etc/fail2ban/filter.d', LOGS, f);
    tc += r.checked; tp += r.passed;
    console.log(`${f}: ${r.passed}/${r.checked} dns=${r.dns} ${r.loadErrors.join(' | ').slice(0, 200)}`);
    if (only) for (const x of r.failures.slice(0, Number(process.env.N ?? 10))) console.log('   ', x.slice(0, 400));
  }
  console.log(`TOTAL ${tp}/${tc}`);
});

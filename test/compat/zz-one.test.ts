import { it } from 'vitest';
import { readFail2banFilter } from '../../src/compat/fail2ban-filter.js';
import { compileDatePatterns, cutDate } from '../../src/compat/fail2ban-date.js';
import { compileRule } from '../../src/detect/compile.js';
it('one', () => {
  const f = readFail2banFilter(`/etc/fail2ban/filter.d/${process.env.F}.conf`, { vars: JSON.parse(process.env.O ?? '{}') });
  const line = process.env.L!;
  const cut = cutDate(line, compileDatePatterns(f.datePatterns));
  console.log('DATE', f.datePatterns);
  console.log('CUT', JSON.stringify(cut));
  console.log('PAT', f.rule.patterns.slice(0, Number(process.env.N ?? 2)));
  console.log('RES', compileRule(f.rule).test(cut));
});

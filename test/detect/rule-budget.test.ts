import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/detect/engine.js';
import { builtinRules } from '../../src/detect/rules-file.js';
import type { DetectEvent } from '../../src/detect/types.js';
import { testRule } from './rule-spec.js';

// `(.*a){12}` backtracks quadratically on a line without an `a` (every start position scans the
// rest of the line) and never trips V8's backtrack budget: about a second per 16 KiB line, so
// without the budget the 12 long lines below would stall detection for ten seconds or more.
const EVIL = testRule(['(.*a){12}<HOST>'], { name: 'evil', maxretry: 1, origin: 'evil.yaml#evil' });
const VICTIM = '198.51.100.7';
const CLIENT = '203.0.113.5';

/** Just under the engine's 16 KiB line cap, so the line is matched and not counted as oversized. */
function longLine(i: number): string {
  const user = `${'b'.repeat(16_000)}${i} from ${VICTIM}`;
  return `Dec  5 11:00:0${i % 10} web1 sshd[4242]: Invalid user ${user} from ${CLIENT} port 22`;
}

describe('rule time budget - a catastrophic user rule against long hostile lines', () => {
  it('stops the runaway matches, takes the rule off long lines with a warning, and never bans the victim', () => {
    const warnings: string[] = [];
    const engine = new Engine([...builtinRules(), EVIL], {
      clock: 'log',
      ignoreSources: true,
      onWarning: (m) => warnings.push(m),
    });
    const events: DetectEvent[] = [];
    for (let i = 0; i < 12; i++)
      events.push(...engine.feed({ text: longLine(i), source: '/var/log/auth.log' }));

    const stats = engine.stats();
    // Three strikes, then the rule no longer sees lines over 1 KiB: the other nine are skipped.
    expect(stats.overBudget).toBe(3);
    expect(stats.overBudgetSkipped).toBe(9);
    expect(engine.ruleBudgetStats()).toEqual([{ rule: 'evil', slowLines: 3, longLinesOff: true }]);
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatch(
      /^rule "evil" \(evil\.yaml#evil\): a 16\d{3}-character line took over 50 ms and was not matched; after 3 lines over its 5 ms budget the rule is no longer matched against lines over 1024 characters/,
    );
    // The line's text (attacker-controlled) never reaches the log.
    for (const w of warnings) expect(w).not.toContain('bbbb');

    // The built-in sshd rule still read every long line and banned the client, never the victim.
    const bans = events.filter((e) => e.type === 'ban');
    expect(bans.map((e) => [e.rule, e.target.text])).toEqual([['sshd', CLIENT]]);
    expect(engine.ruleMatchCounts().find((r) => r.rule === 'sshd')?.matches).toBe(12);

    // Short lines still go through the rule as before.
    const short = engine.feed({ text: 'aaaaaaaaaaaa192.0.2.9', source: 'x' });
    expect(short.map((e) => [e.rule, e.target.text])).toEqual([['evil', '192.0.2.9']]);
  }, 60_000);

  it('rules shipped with rampart are never watched, and `ruleBudget: false` turns the budget off', () => {
    const engine = new Engine(builtinRules(), { clock: 'log', ignoreSources: true });
    expect(engine.ruleBudgetStats()).toEqual([]);
    const off = new Engine([EVIL], { clock: 'log', ruleBudget: false });
    expect(off.ruleBudgetStats()).toEqual([]);
  });
});

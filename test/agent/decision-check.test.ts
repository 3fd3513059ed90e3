import { describe, expect, it } from 'vitest';
import { checkDecision } from '../../src/agent/decision-check.js';

describe('checkDecision', () => {
  it('turns the parsed body itself into the Decision, with defaults for what it lacks', () => {
    const body = JSON.parse(
      '{"seq":5,"action":"ban","target":"192.0.2.1","expiresAt":null,"family":"6","extra":1}',
    );
    const d = checkDecision(body);
    // The same object, normalised in place: no copy per decision on the bus path.
    expect(d).toBe(body);
    expect(d).toEqual({
      seq: 5,
      action: 'ban',
      target: '192.0.2.1',
      expiresAt: null,
      family: 4,
      extra: 1,
      id: '',
      duration: null,
      reason: '',
      rule: '',
      origin: '',
      createdAt: 0,
      set: 'blocklist',
    });
    const full = {
      id: 'x',
      seq: 6,
      action: 'unban',
      target: '2001:db8::1',
      family: 6,
      duration: 60,
      expiresAt: 1,
      reason: 'r',
      rule: 'sshd',
      origin: 'web1',
      createdAt: 2,
      set: 'ssh',
    };
    expect(checkDecision({ ...full })).toEqual(full);
  });

  it('refuses what is not a decision, and leaves it alone', () => {
    const ok = { seq: 1, action: 'ban', target: '192.0.2.1', expiresAt: null };
    for (const bad of [
      null,
      'ban',
      [],
      { ...ok, seq: 0 },
      { ...ok, seq: 1.5 },
      { ...ok, action: 'allow' },
      { ...ok, target: 7 },
      { ...ok, target: 'x'.repeat(65) },
      { ...ok, expiresAt: undefined },
      { ...ok, expiresAt: '1' },
      { ...ok, set: 3 },
    ]) {
      const before = JSON.stringify(bad);
      expect(checkDecision(bad)).toBeNull();
      expect(JSON.stringify(bad)).toBe(before);
    }
  });
});

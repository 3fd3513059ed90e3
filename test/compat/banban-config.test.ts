import { describe, expect, it } from 'vitest';
import { loadBanbanConfig, parseBanbanConfig } from '../../src/compat/banban-config.js';
import { ConfigError } from '../../src/core/errors.js';
import { compileRule } from '../../src/detect/compile.js';
import { Engine } from '../../src/detect/engine.js';
import { tempDir } from './tmp.js';

const tmp = tempDir('banban');

const YAML = `# banban.yml
socket: /var/spool/rsyslog/banban
goodpatterns:
  - '^sshd\\[\\d+\\]: Accepted (?:password|publickey) for \\S+ from (?<ip>[0-9a-fA-F.:]+)'
ignorenets:
  - 10.0.0.0/8
  - 2001:db8:ffff::/48
blocktypes:
  ssh:
    target: BLOCKER
    minocc: 12
    interval: 600
    resetconns: 1
    patterns:
      - '^sshd\\[\\d+\\]: Failed password for (?:invalid user )?\\S+ from (?<ip>[0-9a-fA-F.:]+)'
      - '^sshd\\[\\d+\\]: Invalid user \\S+ from (?<ip>[0-9a-fA-F.:]+)'
  smtp:
    target: THROTTLE
    minocc: 1
    interval: 10m
    patterns: 'postfix/smtpd\\[\\d+\\]: NOQUEUE: reject: RCPT from \\S+\\[(?<ip>[0-9a-fA-F.:]+)\\]'
`;

const at = (s: number) =>
  `2026-01-01T00:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}Z`;

describe('banban YAML loader', () => {
  it('blocktypes become rules: minocc, interval, target, resetconns, goodpatterns, ignorenets; the socket', () => {
    const { socket, rules } = loadBanbanConfig(tmp.write('banban.yml', YAML));
    expect(socket).toBe('/var/spool/rsyslog/banban');
    expect(rules.map((r) => [r.name, r.maxretry, r.findtime, r.set, r.resetConnections, r.bantime])).toEqual([
      ['ssh', 12, 600, 'BLOCKER', true, null],
      ['smtp', 1, 600, 'THROTTLE', false, null],
    ]);
    expect(rules[0]!.ignoreNets).toEqual(['10.0.0.0/8', '2001:db8:ffff::/48']);
    const smtp = compileRule(rules[1]!);
    expect(smtp.test('mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[192.0.2.3]: 554').ip).toBe(
      '192.0.2.3',
    );
  });

  it('minocc 12 bans at the 12th hit (banban capped history at 10 and never fired)', () => {
    const { rules } = parseBanbanConfig(YAML, 'b.yml');
    const engine = new Engine(rules, { clock: 'log', ignoreSources: true });
    const fed = (s: number, ip: string) =>
      engine.feed({
        text: `${at(s)} web sshd[1]: Failed password for root from ${ip} port 22 ssh2`,
        source: 'x',
      });
    for (let s = 0; s < 11; s++) expect(fed(s, '198.51.100.4')).toEqual([]);
    const ban = fed(11, '198.51.100.4');
    expect(ban).toHaveLength(1);
    expect(ban[0]).toMatchObject({ type: 'ban', rule: 'ssh', hits: 12, set: 'BLOCKER' });
    // ignorenets: never banned however often.
    for (let s = 0; s < 20; s++) expect(fed(s, '10.1.2.3')).toEqual([]);
  });

  it('a good pattern forgives the address', () => {
    const { rules } = parseBanbanConfig(YAML, 'b.yml');
    const ssh = compileRule(rules[0]!);
    expect(ssh.test('web sshd[1]: Accepted publickey for az from 198.51.100.4 port 22')).toMatchObject({
      kind: 'good',
      ip: '198.51.100.4',
    });
  });

  it('bad files give one error naming file, line and key', () => {
    const bad = (text: string) => () => parseBanbanConfig(text, 'b.yml');
    const base = 'blocktypes:\n  ssh:\n    target: BLOCKER\n    minocc: 3\n    interval: 60\n    patterns:\n';
    expect(bad(`${base}      - 'no capture here'\n`)).toThrow(ConfigError);
    expect(bad(`${base}      - 'no capture here'\n`)).toThrow(
      /b\.yml:7: blocktypes\.ssh\.patterns\.0: pattern has no named capture/,
    );
    expect(bad(`${base}      - '(?<ip>\\S+'\n`)).toThrow(
      /b\.yml:7: blocktypes\.ssh\.patterns\.0: cannot use pattern/,
    );
    expect(bad(base.replace('minocc: 3', 'minocc: 0') + "      - '(?<ip>\\S+)'\n")).toThrow(
      /b\.yml:4: blocktypes\.ssh\.minocc/,
    );
    expect(bad(base.replace('minocc: 3', 'minoc: 3') + "      - '(?<ip>\\S+)'\n")).toThrow(
      /b\.yml:\d+: blocktypes\.ssh/,
    );
    expect(bad(`ignorenets:\n  - 10.0.0.300/8\n${base}      - '(?<ip>\\S+)'\n`)).toThrow(
      /b\.yml:2: ignorenets\.0/,
    );
    expect(bad(`${base.replace('interval: 60', 'interval: soon')}      - '(?<ip>\\S+)'\n`)).toThrow(
      /b\.yml:5: blocktypes\.ssh\.interval/,
    );
    expect(bad('socket: /x\n')).toThrow(/b\.yml:\d*:? ?blocktypes/);
  });
});

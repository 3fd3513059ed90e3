import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentSectionSchema } from '../../src/config/agent-section.js';
import { builtinRule, loadRulesFile } from '../../src/detect/rules-file.js';
import { resolveHubSection } from '../../src/hub/config.js';
import { builtinFleetRules, resolveFleetPolicy, withFleetDefaults } from '../../src/hub/fleet-policy.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-fleet-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fleet-wide counting configuration', () => {
  it('the built-in sshd rule ships with 10 hits in 1 h fleet-wide; the hub takes it as its default', () => {
    expect(builtinRule('sshd').fleet).toEqual({ maxretry: 10, findtime: 3600 });
    expect(builtinFleetRules()).toEqual({ sshd: { maxretry: 10, findtime: 3600 } });
    const p = resolveFleetPolicy(undefined, builtinFleetRules());
    expect(p).toMatchObject({ enabled: true, perNode: 2, minNodes: 2, maxEntries: 100_000 });
  });

  it('hub.policy.fleet overrides by rule name, durations parsed', () => {
    const s = resolveHubSection({
      policy: {
        fleet: {
          perNode: 1,
          minNodes: 3,
          rules: {
            sshd: { maxretry: 6, findtime: '2h' },
            myapp: { maxretry: 20, findtime: '6h', bantime: '1d' },
          },
        },
      },
    });
    const p = resolveFleetPolicy(s.policy.fleet, builtinFleetRules());
    expect(p).toMatchObject({ perNode: 1, minNodes: 3, maxEntries: 100_000 });
    expect(p.rules).toEqual({
      sshd: { maxretry: 6, findtime: 7200 },
      myapp: { maxretry: 20, findtime: 21600, bantime: 86400 },
    });
  });

  it('a bad hub.policy.fleet value is one error naming the key', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ rules: { sshd: { maxretry: 6, findtime: 'soon' } } }, /hub\.policy\.fleet\.rules\.sshd\.findtime/],
      [{ rules: { sshd: { maxretry: 0, findtime: '1h' } } }, /hub\.policy\.fleet\.rules\.sshd\.maxretry/],
      [
        { rules: { sshd: { maxretry: 5, findtime: 'permanent' } } },
        /hub\.policy\.fleet\.rules\.sshd\.findtime/,
      ],
      [{ rules: { sshd: { maxretry: 5, findtime: '1h', extra: 1 } } }, /hub\.policy\.fleet\.rules\.sshd/],
      [{ perNode: 'two' }, /hub\.policy\.fleet\.perNode/],
      [{ maxEntries: 1 }, /hub\.policy\.fleet\.maxEntries/],
    ];
    for (const [fleet, where] of bad) {
      expect(() => resolveHubSection({ policy: { fleet } }, 'rampart.yaml'), JSON.stringify(fleet)).toThrow(
        where,
      );
    }
  });

  it('a rules file takes fleet: and refuses a bad one naming file and key', () => {
    const ok = join(dir, 'ok.yaml');
    writeFileSync(
      ok,
      "rules:\n  - name: app\n    patterns: ['^fail <HOST>$']\n    fleet: { maxretry: 8, findtime: 30m }\n",
    );
    expect(loadRulesFile(ok)[0]!.fleet).toEqual({ maxretry: 8, findtime: 1800 });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      "rules:\n  - name: app\n    patterns: ['^fail <HOST>$']\n    fleet: { maxretry: 8 }\n",
    );
    expect(() => loadRulesFile(bad)).toThrow(/bad\.yaml.*rules\.0\.fleet\.findtime/);
  });

  it("rampart up: the local rule files' fleet: thresholds are the hub's defaults, hub config wins", () => {
    const app = { ...builtinRule('sshd'), name: 'app', fleet: { maxretry: 7, findtime: 60 } };
    const policy = withFleetDefaults(
      { bantime: 60, fleet: { rules: { sshd: { maxretry: 4, findtime: 60 } } } },
      [app, { ...builtinRule('sshd'), fleet: { maxretry: 99, findtime: 60 } }],
    );
    expect(policy.bantime).toBe(60);
    expect(resolveFleetPolicy(policy.fleet, builtinFleetRules()).rules).toEqual({
      sshd: { maxretry: 4, findtime: 60 },
      app: { maxretry: 7, findtime: 60 },
    });
  });

  it('agent.fleetCounting defaults on, every 2 s', () => {
    expect(agentSectionSchema.parse({})).toMatchObject({ fleetCounting: true, fleetInterval: 2 });
    expect(agentSectionSchema.safeParse({ fleetInterval: 0 }).success).toBe(false);
  });
});

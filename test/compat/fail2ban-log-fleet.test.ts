import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { HubApi } from '../../src/agent/hub-api.js';
import { AgentState } from '../../src/agent/state.js';
import { fail2banLogDetector } from '../../src/compat/fail2ban/log-events.js';
import { Allowlist } from '../../src/core/allowlist.js';
import { silentLogger } from '../../src/core/logger.js';
import { FileSource } from '../../src/sources/file.js';
import { RecordingFirewall } from '../agent/recording-firewall.js';
import { startFail2ban } from '../helpers/fail2ban-server.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, until } from '../hub/helpers.js';

const run = promisify(execFile);
const req = requirements('an existing fail2ban joins the fleet through its log', ['cmd:fail2ban-server']);

describe.skipIf(req.skip)('fail2ban.log → fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-f2blog-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a real fail2ban’s bans (IPv4 and IPv6) become hub decisions, applied by the agent', async () => {
    const t = await startTestHub();
    const f2b = await startFail2ban('sshd', () => ({ ban: 'true', unban: 'true' }), 600);
    const node = await t.enrol('web1');
    const firewall = new RecordingFirewall();
    const log = join(f2b.dir, 'server.log');
    const fromFail2ban = fail2banLogDetector({ paths: [log], bantime: 900 });
    const agent = new Agent({
      name: 'web1',
      fleet: 'default',
      state: AgentState.open(join(dir, 'agent')),
      firewall,
      hub: new HubApi(t.hub.url, node.token),
      hubKey: t.hub.publicKey,
      privateKey: node.keys.privateKey,
      sources: [new FileSource({ paths: [log], name: 'fail2ban-log' })],
      detector: { feed: (line) => fromFail2ban(line) ?? [] },
      allowlist: new Allowlist(),
      log: silentLogger(),
    });
    try {
      await agent.start();
      const client = (...a: string[]) => run('fail2ban-client', ['-s', f2b.socket, ...a]);
      await client('set', 'sshd', 'banip', '192.0.2.10', '2001:db8::10');
      const decisions = async () =>
        ((await t.call('GET', '/v1/decisions?since=0')).json as { decisions: Array<Record<string, unknown>> })
          .decisions;
      let seen: Array<Record<string, unknown>> = [];
      for (let i = 0; i < 400 && seen.length < 2; i++) {
        seen = await decisions();
        if (seen.length < 2) await new Promise((r) => setTimeout(r, 25));
      }
      expect(seen.map((d) => [d.action, d.target, d.rule, d.origin]).sort()).toEqual([
        ['ban', '192.0.2.10', 'fail2ban/sshd', 'web1'],
        ['ban', '2001:db8::10', 'fail2ban/sshd', 'web1'],
      ]);
      await until(() => firewall.committed.size === 2);
    } finally {
      await agent.close();
      await f2b.stop();
      await t.close();
    }
  });
});

describe('fail2ban.log lines as detections', () => {
  const feed = fail2banLogDetector({ paths: ['/var/log/fail2ban.log'], bantime: 120 });
  const line = (text: string, source = '/var/log/fail2ban.log') => feed({ text, source });
  it('Ban and Restore Ban report a ban; Unban lifts the local one; other files and jails are not read', () => {
    const prefix = '2026-12-03 10:16:16,342 fail2ban.actions        [1]: NOTICE  ';
    expect(line(`${prefix}[sshd] Ban 192.0.2.1`)).toMatchObject([
      { type: 'ban', rule: 'fail2ban/sshd', duration: 120, hits: 1, target: { text: '192.0.2.1' } },
    ]);
    expect(line(`${prefix}[sshd] Restore Ban 2001:db8::1`)).toMatchObject([{ type: 'ban' }]);
    expect(line(`${prefix}[sshd] Unban 192.0.2.1`)).toMatchObject([{ type: 'unban', duration: null }]);
    expect(line(`${prefix}[fail2bancluster] Ban 192.0.2.1`)).toEqual([]);
    expect(line(`${prefix}[users] Ban mallory`)).toEqual([]);
    expect(line(`${prefix}[sshd] Ban 192.0.2.1`, '/var/log/auth.log')).toBeNull();
  });
});

import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type Proc, rampart, removeDir, tempDir, until } from '../fleet/harness.js';
import { canConnect, createLan, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const BOUNCER = '/usr/bin/crowdsec-firewall-bouncer';
const req = requirements('crowdsec-firewall-bouncer against a rampart hub', [
  'netns',
  'cmd:nft',
  `file:${BOUNCER}`,
  'file:dist/cli/main.js',
]);

// Host 0 runs the hub, host 1 the real bouncer (enforcing in its own namespace), host 2 attacks.
describe.skipIf(req.skip)('crowdsec-firewall-bouncer enforces a rampart fleet', () => {
  let lan: Lan;
  let dir: string;
  let hub: Proc;
  let bouncer: ChildProcess | undefined;
  let listener: { stop(): void };
  const bouncerLog: string[] = [];
  const table = `rpcs${process.pid % 100000}`;
  const data = () => ['--data', join(dir, 'data')];

  const inSet = async (addr: string) =>
    (await lan.hosts[1]!.exec('nft', ['list', 'table', 'ip', table]).catch(() => '')).includes(addr);

  beforeAll(async () => {
    dir = tempDir('crowdsec');
    lan = await createLan(3, 'csb');
    const [h0, h1] = lan.hosts;
    hub = rampart(h0!, ['hub', '--listen', h0!.v4, '--port', '0', '--broker-port', '0', ...data()]);
    await hub.waitFor((l) => l.msg === 'hub started', 20_000, 'hub start');
    const url = (JSON.parse(readFileSync(join(dir, 'data/hub/hub.json'), 'utf8')) as { url: string }).url;
    const { key } = JSON.parse(await cli(h0!, ['bouncers', 'add', 'fw1', '--json', ...data()])) as {
      key: string;
    };
    const cfg = join(dir, 'bouncer.yaml');
    writeFileSync(
      cfg,
      [
        'mode: nftables',
        `pid_dir: ${dir}`,
        'update_frequency: 1s',
        'daemonize: false',
        'log_mode: stdout',
        'log_level: info',
        `api_url: ${url}/`,
        `api_key: ${key}`,
        'disable_ipv6: true',
        'deny_action: DROP',
        'supported_decisions_types: [ban]',
        'nftables:',
        '  ipv4:',
        '    enabled: true',
        '    set-only: false',
        `    table: ${table}`,
        '    chain: rampart-cs',
        '  ipv6:',
        '    enabled: false',
        'prometheus:',
        '  enabled: false',
        '',
      ].join('\n'),
    );
    listener = await tcpListener(h1!, 8080);
    bouncer = h1!.spawn(BOUNCER, ['-c', cfg]);
    bouncer.stdout!.on('data', (d: Buffer) => bouncerLog.push(d.toString()));
    bouncer.stderr!.on('data', (d: Buffer) => bouncerLog.push(d.toString()));
    await until(
      async () => (await lan.hosts[1]!.exec('nft', ['list', 'tables']).catch(() => '')).includes(table),
      20_000,
      `the bouncer's table (log: ${bouncerLog.join('')})`,
    );
  }, 60_000);

  afterAll(async () => {
    bouncer?.kill('SIGTERM');
    listener?.stop();
    await hub?.stop();
    await lan?.destroy();
    if (dir) removeDir(dir);
  });

  it('a ban reaches its set and drops real TCP; an unban lifts it', async () => {
    const [h0, h1, attacker] = lan.hosts;
    expect(await canConnect(attacker!, h1!.v4, 8080)).toBe(true);
    await cli(h0!, ['ban', attacker!.v4, '--for', '2h', '--reason', 'crowdsec test', ...data()]);
    await until(() => inSet(attacker!.v4), 20_000, `ban in the bouncer's set (log: ${bouncerLog.join('')})`);
    expect(await canConnect(attacker!, h1!.v4, 8080, 1500)).toBe(false);

    await cli(h0!, ['unban', attacker!.v4, ...data()]);
    await until(async () => !(await inSet(attacker!.v4)), 20_000, 'unban leaving the set');
    expect(await canConnect(attacker!, h1!.v4, 8080)).toBe(true);
    const list = JSON.parse(await cli(h0!, ['bouncers', 'list', '--json', ...data()])) as Array<{
      name: string;
      lastPull: number | null;
    }>;
    expect(list[0]).toMatchObject({ name: 'fw1' });
    expect(list[0]!.lastPull).not.toBeNull();
  }, 90_000);

  // docs/compat/crowdsec.md: the bouncer's own set has no `flags interval`, so a range arrives
  // as its network address only; an address inside the range passes the bouncer.
  it('what the bouncer itself does with a range ban', async () => {
    const [h0, h1] = lan.hosts;
    await cli(h0!, ['ban', '203.0.113.0/24', '--for', '1h', ...data()]);
    await until(() => inSet('203.0.113.0'), 20_000, 'range in the set');
    const text = await h1!.exec('nft', ['list', 'table', 'ip', table]);
    expect(text).toMatch(/flags timeout\n/);
    expect(text).not.toContain('interval');
    expect(text).not.toContain('203.0.113.0/24');
    expect(text).toMatch(/elements = \{ 203\.0\.113\.0 timeout/);
  }, 60_000);
});

import { describe, expect, it } from 'vitest';
import { canConnect } from '../helpers/netns.js';
import { cliIn, serverAndClient } from '../helpers/netns-pair.js';
import { requirements } from '../helpers/requirements.js';
import { MAIN } from './run-cli.js';

const req = requirements('firewall init --backend ipset', [
  'root',
  'netns',
  'cmd:ipset',
  'cmd:iptables',
  'cmd:ip6tables',
  `file:${MAIN}`,
]);
const PORT = 8081;

describe.skipIf(req.skip)('firewall init --backend ipset', () => {
  const hosts = serverAndClient('ipin', PORT);

  const rampart = (...args: string[]) => cliIn(hosts.server, MAIN, ['firewall', ...args]);
  const rules = async () =>
    `${await hosts.server.exec('iptables', ['-S', 'INPUT'])}${await hosts.server.exec('ip6tables', ['-S', 'INPUT'])}`
      .split('\n')
      .filter((l) => l.includes('--match-set'));

  it('without --create it changes nothing and prints the commands to add', async () => {
    const r = await rampart('init', '--backend', 'ipset');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('  ipset create blocklist hash:ip family inet timeout 0\n');
    expect(r.stdout).toContain('  ipset create blocklist-net-v6 hash:net family inet6 timeout 0\n');
    expect(r.stdout).toContain('  iptables -I INPUT -m set --match-set blocklist src -j DROP\n');
    expect(r.stdout).toContain('  ip6tables -I INPUT -m set --match-set blocklist-v6 src -j DROP\n');
    expect(await rules()).toEqual([]);
    expect((await hosts.server.exec('ipset', ['list', '-n'])).trim()).toBe('');
  });

  it('--create makes the sets and DROP rules: a real connection is refused after firewall add', async () => {
    const r = await rampart('init', '--backend', 'ipset', '--create');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ipset: sets blocklist, blocklist-net, blocklist-v6, blocklist-net-v6 ready/);
    const sets = await hosts.server.exec('ipset', ['list', '-t']);
    expect(sets).toMatch(/Name: blocklist\nType: hash:ip\n[\s\S]*?Header: family inet .*timeout 0/);
    expect(sets).toMatch(/Name: blocklist-net-v6\nType: hash:net\n[\s\S]*?Header: family inet6 .*timeout 0/);
    expect(await rules()).toHaveLength(4);

    expect(await canConnect(hosts.client, hosts.server.v4, PORT)).toBe(true);
    expect(
      (await rampart('add', '--backend', 'ipset', '--for', '10m', hosts.client.v4, hosts.client.v6)).code,
    ).toBe(0);
    expect(await canConnect(hosts.client, hosts.server.v4, PORT, 800)).toBe(false);
    expect(await canConnect(hosts.client, hosts.server.v6, PORT, 800)).toBe(false);
    expect((await rampart('del', '--backend', 'ipset', hosts.client.v4)).code).toBe(0);
    expect(await canConnect(hosts.client, hosts.server.v4, PORT)).toBe(true);
  });

  it('init --create again adds nothing; "init" then reports everything in place', async () => {
    const again = await rampart('init', '--backend', 'ipset', '--create');
    expect(again.stdout).toMatch(/rules already in place/);
    expect(await rules()).toHaveLength(4);
    expect((await rampart('init', '--backend', 'ipset')).stdout).toMatch(/^ipset: sets and rules in place/);
  });

  it('deinit removes the rules (the ban stops dropping); --create also destroys the sets', async () => {
    expect((await rampart('add', '--backend', 'ipset', hosts.client.v4)).code).toBe(0);
    expect(await canConnect(hosts.client, hosts.server.v4, PORT, 800)).toBe(false);
    const kept = await rampart('deinit', '--backend', 'ipset');
    expect(kept.stdout).toBe('ipset: removed 4 rule(s) (sets kept; --create destroys them)\n');
    expect(await rules()).toEqual([]);
    expect(await canConnect(hosts.client, hosts.server.v4, PORT)).toBe(true);
    const gone = await rampart('deinit', '--backend', 'ipset', '--create');
    expect(gone.stdout).toBe('ipset: removed 0 rule(s), destroyed 4 set(s)\n');
    expect((await hosts.server.exec('ipset', ['list', '-n'])).trim()).toBe('');
  });
});

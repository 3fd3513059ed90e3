import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import type { Logger } from '../../src/core/logger.js';
import { XtRecentFirewall } from '../../src/firewall/xt-recent.js';
import type { Host, Lan } from '../helpers/netns.js';
import { createLan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { firewallContract } from './contract.js';

const inNs = (host: Host) => ['ip', 'netns', 'exec', host.ns];
const recentRule = (name: string) => [
  '-A',
  'INPUT',
  '-m',
  'recent',
  '--name',
  name,
  '--rcheck',
  '--seconds',
  '3600',
  '-j',
  'DROP',
];

firewallContract(
  'xt_recent',
  async (host) => {
    // One table serves both families: the IPv4 and the IPv6 rule name the same list.
    await host.exec('iptables', recentRule('blocklist'));
    await host.exec('ip6tables', recentRule('blocklist'));
    return new XtRecentFirewall({ prefix: inNs(host) });
  },
  { ranges: false, timeouts: false, needs: ['cmd:iptables', 'cmd:ip6tables'] },
);

const req = requirements('xt_recent backend', [
  'netns',
  'cmd:iptables',
  'file:/sys/module/xt_recent/parameters/ip_list_tot',
]);

describe.skipIf(req.skip)('xt_recent backend', () => {
  let lan: Lan;
  let host: Host;
  beforeAll(async () => {
    lan = await createLan(1, 'xtrc');
    host = lan.hosts[0]!;
    await host.exec('iptables', recentRule('BLOCK'));
    await host.exec('iptables', recentRule('SSH'));
  }, 30_000);
  afterAll(async () => {
    await lan?.destroy();
  });

  it('xt_recent - a table no rule uses is a clear error, and the ban stays staged', async () => {
    const fw = new XtRecentFirewall({ prefix: inNs(host), defaultSet: 'NOPE' });
    fw.add(parseTarget('192.0.2.1'), 60);
    await expect(fw.commit()).rejects.toThrow(/table "NOPE" does not exist .*-m recent --name NOPE/);
    expect(fw.pending()).toBe(1);
    await expect(fw.list()).rejects.toThrow(/table "NOPE" does not exist/);
    // Lifting a ban from a table that does not exist has nothing to do, and is not an error.
    fw.delete(parseTarget('192.0.2.1'));
    await expect(fw.commit()).resolves.toEqual({ added: 0, deleted: 0 });
    expect(fw.pending()).toBe(0);
  });

  it('xt_recent - a range is refused with a pointer to backends that hold ranges', () => {
    const fw = new XtRecentFirewall({ prefix: inNs(host) });
    expect(() => fw.add(parseTarget('192.0.2.0/24'), 60)).toThrow(
      /cannot ban the range 192\.0\.2\.0\/24.*ipset or nftables/,
    );
    expect(fw.pending()).toBe(0);
  });

  it('xt_recent - each logical set writes its own table; an unban removes from every table', async () => {
    const fw = new XtRecentFirewall({
      prefix: inNs(host),
      defaultSet: 'ssh',
      targets: { ssh: 'SSH', web: 'BLOCK' },
    });
    await fw.init();
    fw.add(parseTarget('192.0.2.5'), 60);
    fw.add(parseTarget('192.0.2.5'), 60, 'web');
    fw.add(parseTarget('2001:db8::77'), 60, 'web');
    expect(await fw.commit()).toEqual({ added: 3, deleted: 0 });
    const text = (e: { target: { text: string }; set: string }) => `${e.set} ${e.target.text}`;
    expect((await fw.list()).map(text).sort()).toEqual([
      'ssh 192.0.2.5',
      'web 192.0.2.5',
      'web 2001:db8::77',
    ]);
    expect(await host.exec('cat', ['/proc/net/xt_recent/BLOCK'])).toMatch(/src=192\.0\.2\.5 /);
    fw.delete(parseTarget('192.0.2.5'));
    expect(fw.pending()).toBe(2);
    await fw.commit();
    expect((await fw.list()).map(text)).toEqual(['web 2001:db8::77']);
  });

  it('xt_recent - filling a table past ip_list_tot is reported: the kernel forgets the oldest', async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger;
    const fw = new XtRecentFirewall({ prefix: inNs(host), defaultSet: 'BLOCK', logger });
    await fw.init();
    // The module default is 100; size the batch from the real value so it overflows anywhere.
    const cap = Number(readFileSync('/sys/module/xt_recent/parameters/ip_list_tot', 'utf8'));
    const n = cap + 20;
    const addr = (i: number) => `10.9.${i >> 8}.${i & 255}`;
    for (let i = 0; i < n; i++) fw.add(parseTarget(addr(i)), 60);
    await fw.commit();
    expect(warnings.some((w) => /table is full/.test(w))).toBe(true);
    const held = (await fw.list()).map((e) => e.target.text);
    expect(held.length).toBe(cap);
    // The newest survive, the oldest are gone.
    expect(held).toContain(addr(n - 1));
    expect(held).not.toContain(addr(0));
  });
});

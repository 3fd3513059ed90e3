import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { createFirewall } from '../../src/firewall/create.js';
import { IPSET_MAX_TIMEOUT, IpsetFirewall } from '../../src/firewall/ipset.js';
import { sync } from '../../src/firewall/reconcile.js';
import type { Host, Lan } from '../helpers/netns.js';
import { createLan } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';
import { firewallContract } from './contract.js';

const inNs = (host: Host) => ['ip', 'netns', 'exec', host.ns];

// The same contract through libipset in-process and through the spawned ipset program.
for (const driver of ['library', 'spawn'] as const) {
  firewallContract(
    `ipset (${driver})`,
    async (host) => {
      const fw = new IpsetFirewall({ prefix: inNs(host), create: true, driver });
      // The rules that use the sets are the operator's; the backend only manages elements.
      await fw.init();
      for (const set of ['blocklist', 'blocklist-net']) {
        await host.exec('iptables', ['-A', 'INPUT', '-m', 'set', '--match-set', set, 'src', '-j', 'DROP']);
      }
      for (const set of ['blocklist-v6', 'blocklist-net-v6']) {
        await host.exec('ip6tables', ['-A', 'INPUT', '-m', 'set', '--match-set', set, 'src', '-j', 'DROP']);
      }
      return fw;
    },
    {
      needs: ['cmd:ipset', 'cmd:iptables', 'cmd:ip6tables', 'file:/usr/lib/x86_64-linux-gnu/libipset.so.13'],
      driver,
    },
  );
}

const req = requirements('ipset backend', ['netns', 'cmd:ipset']);

describe.skipIf(req.skip)('ipset backend', () => {
  let lan: Lan;
  let host: Host;
  beforeAll(async () => {
    lan = await createLan(1, 'ipst');
    host = lan.hosts[0]!;
  }, 30_000);
  afterAll(async () => {
    await lan?.destroy();
  });

  it('ipset - elements of a missing set are refused naming it; the rest applies, later commits are not blocked', async () => {
    await host.exec('ipset', ['create', 'half', 'hash:ip', 'timeout', '0']);
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'half' });
    await fw.init();
    fw.add(parseTarget('192.0.2.1'), 60);
    fw.add(parseTarget('2001:db8::5'), 60);
    const r = await fw.commit();
    expect(r).toMatchObject({ added: 1, deleted: 0 });
    expect(r.refused?.map((x) => [x.target.text, x.reason])).toEqual([
      ['2001:db8::5', expect.stringMatching(/ipset: set "half-v6" does not exist/)],
    ]);
    expect(fw.pending()).toBe(0);
    // Once the operator creates the set, new bans in it go through.
    await host.exec('ipset', ['create', 'half-v6', 'hash:ip', 'family', 'inet6', 'timeout', '0']);
    fw.add(parseTarget('2001:db8::5'), 60);
    expect(await fw.commit()).toEqual({ added: 1, deleted: 0 });
    expect((await fw.list()).map((e) => e.target.text).sort()).toEqual(['192.0.2.1', '2001:db8::5']);
  });

  it('ipset - a full set is reported with the set, maxelem and the element that did not fit', async () => {
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'tiny', create: true, maxelem: 3 });
    await fw.init();
    for (let i = 1; i <= 4; i++) fw.add(parseTarget(`192.0.2.${i}`), 600);
    await expect(fw.commit()).rejects.toThrow(/set "tiny" is full \(maxelem 3\): could not add 192\.0\.2\.4/);
    expect(fw.pending()).toBe(4);
    fw.delete(parseTarget('192.0.2.4'));
    expect(await fw.commit()).toEqual({ added: 3, deleted: 1 });
    expect(await fw.list()).toHaveLength(3);
  });

  it('ipset - elements for a set of the wrong family or type are refused before anything runs', async () => {
    await host.exec('ipset', ['create', 'fam', 'hash:ip', 'family', 'inet6']);
    const fw = new IpsetFirewall({ prefix: inNs(host), sets: { fam: { v4: 'fam', v4net: 'fam' } } });
    fw.add(parseTarget('192.0.2.9'), 60, 'fam');
    const r = await fw.commit();
    expect(r.refused?.map((x) => [x.target.text, x.reason])).toEqual([
      ['192.0.2.9', expect.stringMatching(/set "fam" is family inet6/)],
    ]);
  });

  it('ipset - timeouts are clamped to 2147483 s, permanent bans have none, an operator set without timeouts still works', async () => {
    await host.exec('ipset', ['create', 'plain', 'hash:ip']);
    const fw = new IpsetFirewall({
      prefix: inNs(host),
      defaultSet: 'clamp',
      create: true,
      sets: { plain: {} },
    });
    await fw.init();
    fw.add(parseTarget('192.0.2.10'), 10 * IPSET_MAX_TIMEOUT);
    fw.add(parseTarget('192.0.2.11'), null);
    fw.add(parseTarget('192.0.2.12'), 600, 'plain');
    await fw.commit();
    const got = new Map((await fw.list()).map((e) => [e.target.text, e]));
    expect(got.get('192.0.2.10')!.timeout).toBeGreaterThan(IPSET_MAX_TIMEOUT - 5);
    expect(got.get('192.0.2.10')!.timeout).toBeLessThanOrEqual(IPSET_MAX_TIMEOUT);
    expect(got.get('192.0.2.11')!.timeout).toBeNull();
    expect(got.get('192.0.2.12')).toMatchObject({ set: 'plain', timeout: null });
  });

  it('ipset - the last change to an element wins, and overlapping commits each apply their own part', async () => {
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'order', create: true });
    await fw.init();
    const a = parseTarget('192.0.2.20');
    const b = parseTarget('192.0.2.21');
    fw.add(a, 600);
    fw.delete(a);
    fw.delete(b);
    fw.add(b, 600);
    const first = fw.commit();
    fw.add(parseTarget('2001:db8::21'), 600);
    const second = fw.commit();
    await Promise.all([first, second]);
    expect(fw.pending()).toBe(0);
    expect((await fw.list()).map((e) => e.target.text).sort()).toEqual(['192.0.2.21', '2001:db8::21']);
  });

  it('ipset - createFirewall builds it from the firewall: config, with conntrack as a post-ban step', async () => {
    const fw = createFirewall({
      backend: 'ipset',
      exec: inNs(host),
      ipset: { defaultSet: 'cfg', create: true },
      conntrack: true,
    });
    expect(fw.name).toBe('ipset+conntrack');
    await fw.init();
    fw.add(parseTarget('192.0.2.30'), 60);
    await fw.commit();
    expect((await fw.list()).map((e) => `${e.set} ${e.target.text}`)).toEqual(['cfg 192.0.2.30']);
    expect(() => createFirewall({ backend: 'ipset', ipset: { maxelem: -1 } } as never)).toThrow(
      /firewall\.ipset\.maxelem/,
    );
    expect(() => createFirewall({ backend: 'command' })).toThrow(/firewall\.command\.file/);
  });

  it('ipset - a ban that waited before its commit carries only its remaining time, or none once it ran out', async () => {
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'wait', create: true });
    await fw.init();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      fw.add(parseTarget('192.0.2.40'), 600);
      fw.add(parseTarget('192.0.2.41'), 60);
      fw.add(parseTarget('192.0.2.42'), null);
      vi.setSystemTime(Date.now() + 100_000);
      expect(await fw.commit()).toEqual({ added: 2, deleted: 1 });
    } finally {
      vi.useRealTimers();
    }
    const got = new Map((await fw.list()).map((e) => [e.target.text, e.timeout]));
    expect(got.get('192.0.2.40')).toBeGreaterThan(490);
    expect(got.get('192.0.2.40')).toBeLessThanOrEqual(500);
    expect(got.has('192.0.2.41')).toBe(false);
    expect(got.get('192.0.2.42')).toBeNull();
  });

  it('ipset - reconcile repairs an external flush by diff, and rebuild swaps in exact content while a rule uses the set', async () => {
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'rb', create: true });
    await fw.init();
    await host.exec('iptables', ['-A', 'INPUT', '-m', 'set', '--match-set', 'rb', 'src', '-j', 'DROP']);
    const entry = (text: string, timeout: number | null) => ({
      target: parseTarget(text),
      set: 'rb',
      timeout,
    });
    const desired = [
      entry('192.0.2.60', 600),
      entry('192.0.2.61', null),
      entry('2001:db8::60', 600),
      entry('198.51.100.0/24', 600),
    ];
    for (const e of desired) fw.add(e.target, e.timeout, e.set);
    await fw.commit();
    await host.exec('ipset', ['flush', 'rb']);
    await host.exec('ipset', ['add', 'rb', '192.0.2.99']);
    const diff = await sync(fw, desired, { strategy: 'diff' });
    expect(diff.added.map((e) => e.target.text).sort()).toEqual(['192.0.2.60', '192.0.2.61']);
    expect(diff.deleted.map((e) => e.target.text)).toEqual(['192.0.2.99']);
    await host.exec('ipset', ['add', 'rb-net', '203.0.113.0/24', 'timeout', '0']);
    const rebuilt = await sync(fw, [...desired, entry('192.0.2.62', 0)], { strategy: 'rebuild' });
    expect(rebuilt).toMatchObject({ strategy: 'rebuild', loaded: 4 });
    const now = new Map((await fw.list('rb')).map((e) => [e.target.text, e.timeout]));
    expect([...now.keys()].sort()).toEqual(['192.0.2.60', '192.0.2.61', '198.51.100.0/24', '2001:db8::60']);
    expect(now.get('192.0.2.61')).toBeNull();
    expect(now.get('192.0.2.60')).toBeGreaterThan(590);
    // The swapped-in sets are the ones the rule matches, and no twin set is left behind.
    expect(await host.exec('iptables', ['-S', 'INPUT'])).toContain('--match-set rb src');
    expect(await host.exec('ipset', ['list', '-n'])).not.toMatch(/^rp-/m);
    await fw.flush('rb');
    expect(await fw.list('rb')).toEqual([]);
  });

  it('ipset (library) - commits go as netlink messages; one the kernel refuses falls back to the script, which names the element; another set type takes the script', async () => {
    await host.exec('ipset', ['create', 'bm', 'bitmap:ip', 'range', '192.0.2.0/24', 'timeout', '0']);
    const fw = new IpsetFirewall({
      prefix: inNs(host),
      defaultSet: 'nl',
      create: true,
      maxelem: 3,
      driver: 'library',
      sets: { bm: { v4: 'bm' } },
    });
    await fw.init();
    fw.add(parseTarget('192.0.2.1'), 600);
    fw.add(parseTarget('2001:db8::1'), null);
    fw.add(parseTarget('198.51.100.0/24'), 600);
    expect(await fw.commit()).toEqual({ added: 3, deleted: 0 });
    expect(fw.netlinkCommits).toEqual({ sent: 1, fellBack: 0 });
    const got = new Map((await fw.list()).map((e) => [e.target.text, e.timeout]));
    expect([...got.keys()].sort()).toEqual(['192.0.2.1', '198.51.100.0/24', '2001:db8::1']);
    expect(got.get('192.0.2.1')).toBeGreaterThan(590);
    expect(got.get('2001:db8::1')).toBeNull();
    // The fourth address does not fit: the kernel refuses that message, the script path reports it.
    for (const a of ['192.0.2.2', '192.0.2.3', '192.0.2.4']) fw.add(parseTarget(a), 600);
    await expect(fw.commit()).rejects.toThrow(/set "nl" is full \(maxelem 3\): could not add 192\.0\.2\.4/);
    expect(fw.netlinkCommits.fellBack).toBe(1);
    fw.delete(parseTarget('192.0.2.4'));
    expect(await fw.commit()).toEqual({ added: 2, deleted: 1 });
    // A commit made while a listing is queued in the driver goes after it, still as messages.
    const listing = fw.list();
    fw.delete(parseTarget('192.0.2.3'));
    const [, committed] = await Promise.all([listing, fw.commit()]);
    expect(committed).toEqual({ added: 0, deleted: 1 });
    expect(fw.netlinkCommits.fellBack).toBe(1);
    // A bitmap set is not encoded here: its elements go as a script, and apply.
    const sent = fw.netlinkCommits.sent;
    fw.add(parseTarget('192.0.2.50'), 600, 'bm');
    expect(await fw.commit()).toEqual({ added: 1, deleted: 0 });
    expect(fw.netlinkCommits.sent).toBe(sent);
    expect((await fw.list('bm')).map((e) => e.target.text)).toEqual(['192.0.2.50']);
    await fw.shutdown();
  });

  it('ipset - 100,000 elements load in one commit and read back', async () => {
    const fw = new IpsetFirewall({ prefix: inNs(host), defaultSet: 'big', create: true, maxelem: 200_000 });
    await fw.init();
    for (let i = 0; i < 100_000; i++) {
      fw.add(parseTarget(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), 3600);
    }
    expect(await fw.commit()).toEqual({ added: 100_000, deleted: 0 });
    const listed = await fw.list('big');
    expect(listed).toHaveLength(100_000);
    expect(listed.every((e) => e.set === 'big' && e.timeout! > 3500)).toBe(true);
  }, 60_000);
});

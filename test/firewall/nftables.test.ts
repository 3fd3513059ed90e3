import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { formatIPv4, parseTarget, type Target } from '../../src/core/address.js';
import { RampartError } from '../../src/core/errors.js';
import { Batcher } from '../../src/firewall/batcher.js';
import { NftablesFirewall, type NftablesOptions } from '../../src/firewall/nftables.js';
import { sync } from '../../src/firewall/reconcile.js';
import type { FirewallEntry } from '../../src/firewall/types.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('nftables backend', ['root', 'netns', 'cmd:nft']);
const PORT = 8080;

/** 10.x.y.z addresses, distinct for i < 2^24. */
const addr = (i: number): Target => parseTarget(formatIPv4((10 << 24) + i + 1));

describe.skipIf(req.skip)('nftables backend', () => {
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  let dir: string;
  let table = 0;
  beforeAll(async () => {
    lan = await createLan(2, 'nft');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
    dir = await mkdtemp(path.join(tmpdir(), 'rampart-nft-'));
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await lan?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  // Every test gets its own table, and nothing hooked stays behind to disturb the next one.
  afterEach(async () => {
    const out = await server.exec('nft', ['list', 'tables']);
    for (const line of out.split('\n')) {
      const m = /^table (\S+) (\S+)$/.exec(line.trim());
      if (m) await server.exec('nft', ['delete', 'table', m[1]!, m[2]!]);
    }
  });

  const make = (opts: NftablesOptions = {}) =>
    new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table: `rp${++table}`, ...opts });
  const blocked = async (f: 4 | 6 = 4) =>
    !(await canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 800));
  // Patient: after an unban, IPv6 neighbour discovery (dropped during the ban) takes about 1 s.
  // A second try absorbs a slow neighbour discovery on a loaded machine; a ban never lets one through.
  const reachable = async (f: 4 | 6 = 4) =>
    (await canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 3000)) ||
    canConnect(client, f === 4 ? server.v4 : server.v6, PORT, 3000);

  async function errorOf(p: Promise<unknown>): Promise<RampartError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RampartError);
    expect((err as RampartError).code).toBe('E_FIREWALL');
    return err as RampartError;
  }

  it('nftables - 100,000 elements go in one commit through a single nft process', async () => {
    // A wrapper counts how many times nft runs.
    const count = path.join(dir, 'count');
    const wrapper = path.join(dir, 'nft-counting');
    await writeFile(wrapper, `#!/bin/sh\necho run >> ${count}\nexec nft "$@"\n`);
    await chmod(wrapper, 0o755);
    const fw = make({ nft: wrapper });
    await fw.init();
    await writeFile(count, '');
    for (let i = 0; i < 100_000; i++) fw.add(addr(i), i % 2 ? 3600 : null);
    expect(await fw.commit()).toEqual({ added: 100_000, deleted: 0 });
    expect((await readFile(count, 'utf8')).trim().split('\n')).toHaveLength(1);
    const listed = await fw.list();
    expect(listed).toHaveLength(100_000);
    const got = await server.exec('nft', [
      'get',
      'element',
      'inet',
      `rp${table}`,
      'blocklist_v4',
      `{ ${addr(99_999).text} }`,
    ]);
    expect(got).toContain(addr(99_999).text);
  }, 120_000);

  it('nftables - a burst of 10,000 bans arriving one by one becomes at most one commit per turn', async () => {
    const fw = make();
    await fw.init();
    const batcher = new Batcher(fw);
    const done: Promise<void>[] = [];
    // Arrivals spread over event-loop turns, the way bus messages come in.
    for (let i = 0; i < 10_000; i++) {
      done.push(batcher.add(addr(i), 600));
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(done);
    // At most one commit per turn of arrivals (20 turns of 500): a netlink batch (ADR 0045) is
    // done within its turn, a bigger script gathers what arrives while it runs; never per ban.
    expect(batcher.stats.commits).toBeGreaterThanOrEqual(1);
    expect(batcher.stats.commits).toBeLessThanOrEqual(21);
    expect(fw.pending()).toBe(0);
    expect(await fw.list()).toHaveLength(10_000);
    await batcher.close();
  }, 60_000);

  it('nftables - a failed batch stays staged and the batcher retries it until it applies', async () => {
    const fw = make({ nft: path.join(dir, 'nft-later') });
    const errors: unknown[] = [];
    // Resolves at the first failed commit: waiting for the event, not for a fixed time.
    let failed!: () => void;
    const firstFailure = new Promise<void>((r) => {
      failed = r;
    });
    const batcher = new Batcher(fw, {
      delayMs: 1,
      retryMs: 50,
      onError: (e) => {
        errors.push(e);
        failed();
      },
    });
    const applied = batcher.add(parseTarget(client.v4), 600);
    await firstFailure;
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(fw.pending()).toBe(1);
    // The tool appears (a package got installed): the next retry applies the batch.
    await writeFile(path.join(dir, 'nft-later'), '#!/bin/sh\nexec nft "$@"\n');
    await chmod(path.join(dir, 'nft-later'), 0o755);
    await applied;
    expect(fw.pending()).toBe(0);
    expect(await blocked()).toBe(true);
    await batcher.close();
  }, 30_000);

  it('nftables - reconcile puts back what an external `nft flush set` removed', async () => {
    const fw = make();
    await fw.init();
    const desired: FirewallEntry[] = [
      { target: parseTarget(client.v4), set: 'blocklist', timeout: 600 },
      { target: parseTarget(client.v6), set: 'blocklist', timeout: null },
      { target: parseTarget('203.0.113.0/24'), set: 'blocklist', timeout: 600 },
    ];
    for (const e of desired) fw.add(e.target, e.timeout, e.set);
    fw.add(parseTarget('192.0.2.200'), 600);
    await fw.commit();
    await server.exec('nft', ['flush', 'set', 'inet', `rp${table}`, 'blocklist_v4']);
    expect(await reachable(4)).toBe(true);
    const report = await sync(fw, desired);
    expect(report.strategy).toBe('diff');
    expect(report.added.map((e) => e.target.text)).toEqual([client.v4]);
    // Not desired any more, and still present in the range set: removed.
    expect(report.deleted).toEqual([]);
    expect(await blocked(4)).toBe(true);
    expect(await blocked(6)).toBe(true);
    // A second pass finds nothing to repair.
    const again = await sync(fw, desired);
    expect(again.added).toEqual([]);
    expect(again.deleted).toEqual([]);
  }, 30_000);

  it('nftables - reconcile re-creates a table someone deleted, and removes what is not desired', async () => {
    const fw = make();
    await fw.init();
    fw.add(parseTarget(client.v4), 600);
    fw.add(parseTarget('192.0.2.9'), 600);
    await fw.commit();
    await server.exec('nft', ['delete', 'table', 'inet', `rp${table}`]);
    expect(await reachable()).toBe(true);
    const report = await sync(fw, [{ target: parseTarget(client.v4), set: 'blocklist', timeout: 600 }]);
    expect(report.added.map((e) => e.target.text)).toEqual([client.v4]);
    expect(await blocked()).toBe(true);
    const stray = await sync(fw, []);
    expect(stray.deleted.map((e) => e.target.text)).toEqual([client.v4]);
    expect(await reachable()).toBe(true);
  }, 30_000);

  it('nftables - a commit after the table was deleted declares it again without losing the batch', async () => {
    const fw = make();
    await fw.init();
    await server.exec('nft', ['delete', 'table', 'inet', `rp${table}`]);
    fw.add(parseTarget(client.v4), 600);
    await fw.commit();
    expect(await blocked()).toBe(true);
  }, 30_000);

  it('nftables - a rebuild replaces the sets in one transaction (flush + add)', async () => {
    const fw = make();
    await fw.init();
    fw.add(parseTarget('192.0.2.50'), 600);
    await fw.commit();
    await server.exec('nft', ['flush', 'set', 'inet', `rp${table}`, 'blocklist_v4']);
    const report = await sync(fw, [{ target: parseTarget(client.v4), set: 'blocklist', timeout: 600 }], {
      strategy: 'rebuild',
    });
    expect(report).toMatchObject({ strategy: 'rebuild', loaded: 1 });
    expect((await fw.list()).map((e) => e.target.text)).toEqual([client.v4]);
    expect(await blocked()).toBe(true);
  }, 30_000);

  it('nftables - set-only mode fills the operator’s sets and never creates or deletes tables', async () => {
    await server.exec('nft', ['-f', '-'], {
      input: `table inet filter {
        set bad4 { type ipv4_addr; flags timeout; }
        set bad6 { type ipv6_addr; flags interval, timeout; }
        chain input { type filter hook input priority 0; ip saddr @bad4 drop; ip6 saddr @bad6 drop; }
      }\n`,
    });
    const fw = make({ setOnly: true, table: 'filter', sets: { blocklist: { v4: 'bad4', v6: 'bad6' } } });
    await fw.init();
    fw.add(parseTarget(client.v4), 600);
    fw.add(parseTarget('2001:db8::/120'), 600);
    await fw.commit();
    expect(await blocked(4)).toBe(true);
    expect(await blocked(6)).toBe(true);
    expect((await fw.list()).map((e) => e.target.text).sort()).toEqual([client.v4, '2001:db8::/120'].sort());
    await fw.shutdown();
    await fw.destroy();
    const tables = await server.exec('nft', ['list', 'tables']);
    expect(tables.trim()).toBe('table inet filter');
    // A set with no kernel counterpart is refused, naming it, and set aside.
    fw.add(parseTarget('192.0.2.1'), 60, 'other');
    const r = await fw.commit();
    expect(r.refused?.map((x) => x.reason)).toEqual([expect.stringMatching(/"other".*192\.0\.2\.1/)]);
    expect(fw.pending()).toBe(0);
  }, 30_000);

  it('nftables - set-only mode with a missing set fails at init, naming the set', async () => {
    const fw = make({ setOnly: true, table: 'nosuch', sets: { blocklist: { v4: 'bad4' } } });
    const err = await errorOf(fw.init());
    expect(err.message).toMatch(/nftables.*set-only.*nosuch bad4/);
  });

  it('nftables - nft missing: one error naming backend, set and element; the batch stays staged', async () => {
    const fw = make({ nft: '/nonexistent/nft' });
    fw.add(parseTarget('192.0.2.1'), 60);
    fw.add(parseTarget('192.0.2.2'), 60);
    const err = await errorOf(fw.commit());
    expect(err.message).toMatch(
      /^nftables: cannot run "\/nonexistent\/nft".*blocklist_v4.*element 192\.0\.2\.1/,
    );
    expect(fw.pending()).toBe(2);
  });

  it('nftables - permission denied says so, naming the set and element', async () => {
    const fw = new NftablesFirewall({
      prefix: [
        'ip',
        'netns',
        'exec',
        server.ns,
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
      ],
      table: `rp${++table}`,
    });
    fw.add(parseTarget('192.0.2.1'), 60);
    const err = await errorOf(fw.commit());
    expect(err.message).toMatch(/nftables: .*(Operation not permitted|Permission denied)/);
    expect(err.message).toMatch(/root or CAP_NET_ADMIN.*first: set blocklist, element 192\.0\.2\.1/);
    expect(fw.pending()).toBe(1);
  });

  it('nftables - a malformed element is set aside, named with its set; the rest of the batch applies', async () => {
    const fw = make();
    await fw.init();
    const good = parseTarget(client.v4);
    // A target whose text went bad (nothing in rampart should make one, which is why it must not corrupt state).
    const bad: Target = { ...parseTarget('192.0.2.3'), text: '192.0.2.x' };
    fw.add(good, 600);
    fw.add(bad, 600);
    const r = await fw.commit();
    expect(r.refused).toHaveLength(1);
    expect(r.refused![0]).toMatchObject({ set: 'blocklist', target: { text: '192.0.2.x' } });
    expect(r.refused![0]!.reason).toMatch(
      new RegExp(`set inet rp${table} blocklist_v4, element 192\\.0\\.2\\.x`),
    );
    expect(fw.pending()).toBe(0);
    expect(await reachable()).toBe(false);
    expect((await fw.list()).map((e) => e.target.text)).toEqual([good.text]);
  }, 30_000);

  it('nftables - an element of the wrong family for an operator set names both', async () => {
    await server.exec('nft', ['-f', '-'], {
      input: 'table ip filter {\n set only4 { type ipv4_addr; flags timeout; }\n}\n',
    });
    const fw = make({
      setOnly: true,
      family: 'ip',
      table: 'filter',
      sets: { blocklist: { v4: 'only4', v6: 'only4' } },
    });
    await fw.init();
    fw.add(parseTarget('2001:db8::5'), 60);
    const r = await fw.commit();
    expect(r.refused?.map((x) => x.reason)).toEqual([expect.stringMatching(/only4, element 2001:db8::5/)]);
  });

  it('nftables - changing the priority of an existing table says how to fix it', async () => {
    await make({ priority: -10 }).init();
    const again = new NftablesFirewall({
      prefix: ['ip', 'netns', 'exec', server.ns],
      table: `rp${table}`,
      priority: 5,
    });
    expect((await errorOf(again.init())).message).toMatch(
      /another hook or priority: delete table inet rp\d+/,
    );
  });
});

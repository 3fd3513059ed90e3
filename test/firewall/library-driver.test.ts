import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { LibraryDriver } from '../../src/firewall/driver.js';
import { INLINE_CHARS } from '../../src/firewall/inline-kernel.js';
import { encodeIpsetChanges } from '../../src/firewall/ipset-netlink.js';
import { readAnswer } from '../../src/firewall/netlink-message.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('library driver', [
  'root',
  'netns',
  'cmd:nft',
  'cmd:ipset',
  'file:/usr/lib/x86_64-linux-gnu/libnftables.so.1',
  'file:/usr/lib/x86_64-linux-gnu/libipset.so.13',
]);

describe.skipIf(req.skip)('library driver: small commits on the calling thread', () => {
  const ns = `rp-drv-${randomBytes(3).toString('hex')}`;
  const inNs = (args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args]).toString();
  let nft: LibraryDriver;
  let ipset: LibraryDriver;

  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    nft = await LibraryDriver.open('nft', `/run/netns/${ns}`);
    ipset = await LibraryDriver.open('ipset', `/run/netns/${ns}`);
  });
  afterAll(async () => {
    await nft?.close();
    await ipset?.close();
    execFileSync('ip', ['netns', 'del', ns]);
  });

  it('nftables: a single-element commit runs in this thread and lands in the namespace, not the host', async () => {
    const table = `rp_inline_${randomBytes(2).toString('hex')}`;
    const before = { ...nft.calls };
    const r = await nft.run(
      ['-f', '-'],
      [
        `add table inet ${table}\n`,
        `add set inet ${table} s { type ipv4_addr; flags timeout; }\n`,
        `add element inet ${table} s { 192.0.2.10 timeout 60s }\n`,
      ],
    );
    expect(r).toMatchObject({ code: 0 });
    expect(nft.calls.inline).toBe(before.inline + 1);
    expect(nft.calls.worker).toBe(before.worker);
    expect(inNs(['nft', 'list', 'set', 'inet', table, 's'])).toContain('192.0.2.10');
    // Read-only look at the host: the thread came back out of the namespace for its own calls.
    expect(execFileSync('nft', ['list', 'tables']).toString()).not.toContain(table);
  });

  it('nftables: a failing small commit reports the line, like nft -f', async () => {
    const r = await nft.run(['-f', '-'], ['add element inet rp_absent s { 192.0.2.11 }\n']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/No such file or directory/);
    expect(r.stderr).toMatch(/:1:/);
  });

  it('nftables: a big batch goes to the worker, and a small commit made after it waits for it', async () => {
    const table = `rp_order_${randomBytes(2).toString('hex')}`;
    const lines = [`add table inet ${table}\n`, `add set inet ${table} s { type ipv4_addr; }\n`];
    for (let i = 0; lines.join('').length <= INLINE_CHARS; i++)
      lines.push(`add element inet ${table} s { 10.0.${i >> 8}.${i & 255} }\n`);
    const before = { ...nft.calls };
    // Not awaited in between: the small one needs the set the big one creates.
    const big = nft.run(['-f', '-'], lines);
    const small = nft.run(['-f', '-'], [`add element inet ${table} s { 192.0.2.12 }\n`]);
    expect(await big).toMatchObject({ code: 0 });
    expect(await small).toMatchObject({ code: 0 });
    expect(nft.calls.worker).toBe(before.worker + 1);
    expect(nft.calls.inline).toBe(before.inline + 1);
    expect(inNs(['nft', 'list', 'set', 'inet', table, 's'])).toContain('192.0.2.12');
  });

  it("nftables: a set read a few messages deep (a reconcile's probe) runs here, a whole read in the worker", async () => {
    const table = `rp_probe_${randomBytes(2).toString('hex')}`;
    inNs([
      'nft',
      `add table inet ${table}; add set inet ${table} s { type ipv4_addr; }; add element inet ${table} s { 192.0.2.20, 192.0.2.21 }`,
    ]);
    const before = { ...nft.calls };
    const probe = await nft.run(['--dump-set', '1', table, 's', '8'], '', { small: true });
    expect(probe.dump).toMatchObject({ status: 'ok', count: 2 });
    expect(nft.calls.inline).toBe(before.inline + 1);
    expect(nft.calls.worker).toBe(before.worker);
    const whole = await nft.run(['--dump-set', '1', table, 's', '0']);
    expect(whole.dump).toMatchObject({ status: 'ok', count: 2 });
    expect(nft.calls.worker).toBe(before.worker + 1);
  });

  it('nftables: listings go to the worker (a big set takes long to read), unless the caller says it is small', async () => {
    const before = { ...nft.calls };
    const r = await nft.run(['-j', 'list', 'tables']);
    expect(r.code).toBe(0);
    expect(nft.calls.worker).toBe(before.worker + 1);
    const small = await nft.run(['-j', 'list', 'tables'], '', { small: true });
    expect(small.stdout).toBe(r.stdout);
    expect(nft.calls.worker).toBe(before.worker + 1);
    expect(nft.calls.inline).toBe(before.inline + 1);
  });

  it('ipset: a single-element restore runs in this thread and lands in the namespace', async () => {
    const set = `rp_inline_${randomBytes(2).toString('hex')}`;
    inNs(['ipset', 'create', set, 'hash:ip', 'timeout', '0']);
    const before = { ...ipset.calls };
    const r = await ipset.run(['-exist', 'restore'], `add ${set} 192.0.2.13 timeout 60\n`);
    expect(r).toMatchObject({ code: 0 });
    expect(ipset.calls.inline).toBe(before.inline + 1);
    expect(inNs(['ipset', 'list', set])).toContain('192.0.2.13');
    const bad = await ipset.run(['-exist', 'restore'], `add ${set} 192.0.2.14\nadd ${set} not-an-address\n`);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Error in line 2/);
  });

  it('ipset: a second driver in the same process loads the library on this thread too', async () => {
    // koffi's type names are global to the process: a named callback type declared by the first
    // core made the second one fail to load here, so every later ipset call went to a worker.
    const second = await LibraryDriver.open('ipset', `/run/netns/${ns}`);
    try {
      const set = `rp_second_${randomBytes(2).toString('hex')}`;
      inNs(['ipset', 'create', set, 'hash:ip', 'timeout', '0']);
      const r = await second.run(['-exist', 'restore'], `add ${set} 192.0.2.15 timeout 60\n`);
      expect(r).toMatchObject({ code: 0 });
      expect(second.calls).toMatchObject({ inline: 1, worker: 0 });
      expect(inNs(['ipset', 'list', set])).toContain('192.0.2.15');
    } finally {
      await second.close();
    }
  });

  it('ipset: a netlink batch sent from the worker lands in the namespace, and a refused one reports its error', async () => {
    const set = `rp_nlw_${randomBytes(2).toString('hex')}`;
    inNs(['ipset', 'create', set, 'hash:ip', 'timeout', '0', 'maxelem', '2']);
    const changes = ['192.0.2.16', '192.0.2.17'].map((a) => ({
      set,
      target: parseTarget(a),
      op: 'add' as const,
      timeout: 60,
      cidr: false,
    }));
    const before = { ...ipset.calls };
    const ok = encodeIpsetChanges(changes, 1);
    const answer = await ipset.netlinkOffThread(ok.bytes, ok.acked.length, false);
    expect(answer && readAnswer(answer.reply, ok.acked)).toEqual({ ok: true });
    expect(ipset.calls.worker).toBe(before.worker + 1);
    expect(inNs(['ipset', 'list', set])).toMatch(
      /192\.0\.2\.16[\s\S]*192\.0\.2\.17|192\.0\.2\.17[\s\S]*192\.0\.2\.16/,
    );
    // A third element does not fit (maxelem 2): the kernel's error comes back, nothing is acked.
    const full = encodeIpsetChanges([{ ...changes[0]!, target: parseTarget('192.0.2.18') }], 5);
    const refused = await ipset.netlinkOffThread(full.bytes, full.acked.length, false);
    expect(refused && readAnswer(refused.reply, full.acked)).toMatchObject({ ok: false });
    expect(inNs(['ipset', 'list', set])).not.toContain('192.0.2.18');
  });
});

describe.skipIf(req.skip)('library driver: the kernel worker runs only while needed', () => {
  const ns = `rp-drw-${randomBytes(3).toString('hex')}`;
  const inNs = (args: string[]) => execFileSync('ip', ['netns', 'exec', ns, ...args]).toString();
  let nft: LibraryDriver;

  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', ns]);
    nft = await LibraryDriver.open('nft', `/run/netns/${ns}`, { idleMs: 300 });
  });
  afterAll(async () => {
    await nft?.close();
    execFileSync('ip', ['netns', 'del', ns]);
  });

  const bigScript = (table: string, third: number) => {
    const lines = [`add table inet ${table}\n`, `add set inet ${table} s { type ipv4_addr; }\n`];
    for (let i = 0; lines.join('').length <= INLINE_CHARS; i++)
      lines.push(`add element inet ${table} s { 10.${third}.${i >> 8}.${i & 255} }\n`);
    return lines;
  };

  it('opening the driver and small commits start no worker thread', async () => {
    const table = `rp_idle_${randomBytes(2).toString('hex')}`;
    expect(nft.workerRunning).toBe(false);
    const r = await nft.run(
      ['-f', '-'],
      [`add table inet ${table}\n`, `add set inet ${table} s { type ipv4_addr; }\n`],
    );
    expect(r).toMatchObject({ code: 0 });
    expect(nft.workerRunning).toBe(false);
    expect(nft.workersStarted).toBe(0);
  });

  it('a big batch starts the worker, which stops after the quiet spell; the next one starts another', async () => {
    const table = `rp_lazy_${randomBytes(2).toString('hex')}`;
    expect(await nft.run(['-f', '-'], bigScript(table, 1))).toMatchObject({ code: 0 });
    expect(nft.workerRunning).toBe(true);
    expect(nft.workersStarted).toBe(1);
    for (let i = 0; i < 100 && nft.workerRunning; i++) await new Promise((r) => setTimeout(r, 50));
    expect(nft.workerRunning).toBe(false);
    // A listing and a second batch after the stop: a new worker, in the same namespace.
    const listed = await nft.run(['-j', 'list', 'set', 'inet', table, 's']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('10.1.0.0');
    expect(nft.workersStarted).toBe(2);
    expect(await nft.run(['-f', '-'], bigScript(table, 2).slice(2))).toMatchObject({ code: 0 });
    expect(inNs(['nft', 'list', 'set', 'inet', table, 's'])).toContain('10.2.0.0');
    // Host untouched: the new worker entered the namespace too.
    expect(execFileSync('nft', ['list', 'tables']).toString()).not.toContain(table);
  });
});

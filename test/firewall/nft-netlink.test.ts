import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { readAnswer } from '../../src/firewall/netlink-message.js';
import { encodeElementBatch, keyBytes } from '../../src/firewall/nft-netlink.js';
import { NftablesFirewall } from '../../src/firewall/nftables.js';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

describe('nf_tables element batches: encoding', () => {
  it('keys are the address bytes in network order', () => {
    expect(keyBytes(parseTarget('192.0.2.10')).toString('hex')).toBe('c000020a');
    expect(keyBytes(parseTarget('2001:db8::1')).toString('hex')).toBe('20010db8000000000000000000000001');
  });

  it('a batch is begin, one message per set and operation, end; every element message is acked', () => {
    const b = encodeElementBatch(
      'inet',
      'rampart',
      [
        { set: 'bl_v4', target: parseTarget('192.0.2.1'), op: 'add', timeout: 600 },
        { set: 'bl_v4', target: parseTarget('192.0.2.2'), op: 'delete', timeout: null },
      ],
      100,
    );
    // begin (100), add-before-delete (101), delete (102), add (103), end (104)
    expect(b.acked).toEqual([101, 102, 103]);
    const types: number[] = [];
    for (let off = 0; off < b.bytes.length; ) {
      const len = b.bytes.readUInt32LE(off);
      types.push(b.bytes.readUInt16LE(off + 4));
      off += (len + 3) & ~3;
    }
    expect(types).toEqual([0x10, 0xa0c, 0xa0e, 0xa0c, 0x11]);
    // The timeout travels in milliseconds, big-endian, after the key.
    expect(b.bytes.includes(Buffer.from('00000000000927c0', 'hex'))).toBe(true);
  });

  it('a timeout past 2^32 ms keeps its high half, and a reused scratch buffer encodes the same bytes', () => {
    const year = 365 * 24 * 3600;
    const changes = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        set: 'bl_v4',
        target: parseTarget(`198.18.${i >> 8}.${i & 255}`),
        op: i % 7 === 0 ? ('delete' as const) : ('add' as const),
        timeout: i % 7 === 0 ? null : year,
      }));
    const fresh = encodeElementBatch('inet', 'rampart', changes(300), 7);
    // 31,536,000,000 ms = 0x0000_0007_57b1_2c00
    expect(fresh.bytes.includes(Buffer.from('0000000757b12c00', 'hex'))).toBe(true);
    const scratch = Buffer.alloc(256 * 1024, 0xff);
    // Dirty from a bigger batch first: stale bytes must not reach the padding of the next one.
    encodeElementBatch('inet', 'rampart', changes(2000), 1, scratch);
    const reused = encodeElementBatch('inet', 'rampart', changes(300), 7, scratch);
    expect(reused.bytes.buffer).toBe(scratch.buffer);
    expect(reused.bytes.equals(fresh.bytes)).toBe(true);
  });

  it('a long element list is split across messages of the same transaction', () => {
    const changes = Array.from({ length: 2500 }, (_, i) => ({
      set: 'bl_v6',
      target: parseTarget(`2001:db8::${(i + 1).toString(16)}`),
      op: 'add' as const,
      timeout: 60,
    }));
    const b = encodeElementBatch('inet', 'rampart', changes, 1);
    expect(b.acked).toEqual([2, 3, 4]);
    let messages = 0;
    for (let off = 0; off < b.bytes.length; messages++) off += (b.bytes.readUInt32LE(off) + 3) & ~3;
    expect(messages).toBe(5);
  });

  const ack = (seq: number, error: number) => {
    const m = Buffer.alloc(36);
    m.writeUInt32LE(36, 0);
    m.writeUInt16LE(2, 4);
    m.writeUInt32LE(seq, 8);
    m.writeInt32LE(error, 16);
    return m;
  };

  it('an answer is good only when every message was acked without error', () => {
    expect(readAnswer(Buffer.concat([ack(5, 0), ack(6, 0)]), [5, 6])).toEqual({ ok: true });
    expect(readAnswer(ack(5, 0), [5, 6])).toEqual({ ok: false, errno: 0 });
    expect(readAnswer(Buffer.concat([ack(5, 0), ack(6, -2)]), [5, 6])).toEqual({
      ok: false,
      errno: 2,
      seq: 6,
    });
    // A truncated or lying length is not read past.
    expect(readAnswer(ack(5, 0).subarray(0, 20), [5])).toEqual({ ok: false, errno: 0 });
  });
});

const req = requirements('nf_tables element batches', ['root', 'netns', 'cmd:nft']);

describe.skipIf(req.skip)('nf_tables element batches: in a real kernel', () => {
  const PORT = 8471;
  let lan: Lan;
  let server: Host;
  let client: Host;
  let listener: { stop(): void };
  let fw: NftablesFirewall;
  const table = `rp_nl_${randomBytes(2).toString('hex')}`;
  const nft = (...args: string[]) =>
    execFileSync('ip', ['netns', 'exec', server.ns, 'nft', ...args]).toString();
  const elements = (set: string) => {
    const json = JSON.parse(nft('-j', 'list', 'set', 'inet', table, set)) as {
      nftables: Array<{ set?: { elem?: unknown[] } }>;
    };
    return (json.nftables.find((x) => x.set)?.set?.elem ?? []).map((e) =>
      typeof e === 'string' ? { val: e } : ((e as { elem: { val: string; timeout?: number } }).elem ?? e),
    ) as Array<{ val: string; timeout?: number }>;
  };

  beforeAll(async () => {
    lan = await createLan(2, 'nlel');
    [server, client] = lan.hosts as [Host, Host];
    listener = await tcpListener(server, PORT);
    fw = new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table, driver: 'library' });
    await fw.init();
  }, 60_000);
  afterAll(async () => {
    listener?.stop();
    await fw?.destroy().catch(() => {});
    await fw?.shutdown();
    await lan?.destroy();
  });

  it('single bans go as netlink batches: in the set with their timeout, and traffic is dropped', async () => {
    expect(await canConnect(client, server.v4, PORT, 3000)).toBe(true);
    const before = { ...fw.netlinkCommits };
    fw.add(parseTarget(client.v4), 600);
    expect(await fw.commit()).toMatchObject({ added: 1, deleted: 0 });
    fw.add(parseTarget('2001:db8::77'), null);
    await fw.commit();
    expect(fw.netlinkCommits.sent).toBe(before.sent + 2);
    expect(fw.netlinkCommits.fellBack).toBe(before.fellBack);
    const v4 = elements('blocklist_v4').find((e) => e.val === client.v4);
    expect(v4?.timeout).toBe(600);
    // Permanent: no timeout on the element.
    expect(elements('blocklist_v6').find((e) => e.val === '2001:db8::77')).toEqual({ val: '2001:db8::77' });
    expect(await canConnect(client, server.v4, PORT, 800)).toBe(false);
  });

  it('a single ban is in the kernel before commit() returns: no event-loop turn on its way (ADR 0066)', async () => {
    const before = { ...fw.netlinkCommits };
    fw.add(parseTarget('198.51.100.66'), 600);
    const done = fw.commit();
    // Read from another process before anything awaited here: the batch went in the call itself.
    expect(elements('blocklist_v4').some((e) => e.val === '198.51.100.66')).toBe(true);
    expect(await done).toMatchObject({ added: 1, deleted: 0 });
    expect(fw.netlinkCommits.sent).toBe(before.sent + 1);
  });

  it('an unban goes the same way, also for an element that is no longer there', async () => {
    const before = { ...fw.netlinkCommits };
    fw.delete(parseTarget(client.v4));
    fw.delete(parseTarget('198.51.100.250'));
    expect(await fw.commit()).toMatchObject({ deleted: 2 });
    expect(fw.netlinkCommits.sent).toBe(before.sent + 1);
    expect(elements('blocklist_v4').some((e) => e.val === client.v4)).toBe(false);
    expect(await canConnect(client, server.v4, PORT, 3000)).toBe(true);
  });

  it('when the kernel refuses the batch (table deleted behind our back) the script path re-declares and applies', async () => {
    nft('delete', 'table', 'inet', table);
    const before = { ...fw.netlinkCommits };
    fw.add(parseTarget('203.0.113.40'), 300);
    expect(await fw.commit()).toMatchObject({ added: 1 });
    // Refused once, then straight to the script path: not a second netlink try of the same batch.
    expect(fw.netlinkCommits.fellBack).toBe(before.fellBack + 1);
    expect(elements('blocklist_v4').some((e) => e.val === '203.0.113.40')).toBe(true);
    // And the next one goes by netlink again.
    fw.add(parseTarget('203.0.113.41'), 300);
    await fw.commit();
    expect(fw.netlinkCommits.sent).toBe(before.sent + 1);
  });

  it('a burst of 1,500 bans goes as one netlink transaction of two messages, every element applied', async () => {
    const before = { ...fw.netlinkCommits };
    for (let i = 0; i < 1500; i++) fw.add(parseTarget(`198.18.${i >> 8}.${i & 255}`), 900);
    expect(await fw.commit()).toMatchObject({ added: 1500 });
    expect(fw.netlinkCommits.sent).toBe(before.sent + 1);
    const got = new Set(elements('blocklist_v4').map((e) => e.val));
    expect(
      Array.from({ length: 1500 }, (_, i) => `198.18.${i >> 8}.${i & 255}`).every((a) => got.has(a)),
    ).toBe(true);
  });

  it('a commit of 4,500 goes as three netlink transactions of at most 2,000, every element applied', async () => {
    const before = { ...fw.netlinkCommits };
    const addrs = Array.from({ length: 4500 }, (_, i) => `198.19.${i >> 8}.${i & 255}`);
    for (const a of addrs) fw.add(parseTarget(a), 900);
    // A few deletes ride along, of elements there and not there.
    fw.delete(parseTarget('198.18.0.1'));
    fw.delete(parseTarget('198.51.100.251'));
    expect(await fw.commit()).toMatchObject({ added: 4500, deleted: 2 });
    expect(fw.netlinkCommits.sent).toBe(before.sent + 3);
    expect(fw.netlinkCommits.fellBack).toBe(before.fellBack);
    const got = new Set(elements('blocklist_v4').map((e) => e.val));
    expect(addrs.filter((a) => !got.has(a))).toEqual([]);
    expect(got.has('198.18.0.1')).toBe(false);
  });

  it('when a later transaction of a big commit is refused, the rest takes the script path', async () => {
    const before = { ...fw.netlinkCommits };
    const addrs = Array.from({ length: 3000 }, (_, i) => `198.20.${i >> 8}.${i & 255}`);
    for (const a of addrs) fw.add(parseTarget(a), 900);
    // The table goes (a firewall reload) just before the second transaction reaches the kernel.
    const driver = (fw as unknown as { opened: { netlink(b: Buffer): unknown } }).opened;
    const send = driver.netlink.bind(driver);
    let calls = 0;
    driver.netlink = (b) => {
      if (++calls === 2) nft('delete', 'table', 'inet', table);
      return send(b);
    };
    try {
      expect(await fw.commit()).toMatchObject({ added: 3000 });
    } finally {
      driver.netlink = send;
    }
    expect(fw.netlinkCommits.sent).toBe(before.sent + 1);
    expect(fw.netlinkCommits.fellBack).toBe(before.fellBack + 1);
    // The script path declared the table again and applied the part from the refused one on;
    // the first part went with the old table (what a reconcile puts back).
    const got = new Set(elements('blocklist_v4').map((e) => e.val));
    expect(addrs.slice(2000).filter((a) => !got.has(a))).toEqual([]);
    expect(got.has(addrs[0]!)).toBe(false);
  });

  it('ranges and switched-off batches take the script path', async () => {
    const before = { ...fw.netlinkCommits };
    fw.add(parseTarget('198.51.100.0/28'), 300);
    await fw.commit();
    expect(elements('blocklist_v4_net').some((e) => JSON.stringify(e).includes('198.51.100.0'))).toBe(true);
    const off = new NftablesFirewall({
      prefix: ['ip', 'netns', 'exec', server.ns],
      table,
      driver: 'library',
      netlinkElements: false,
    });
    await off.init();
    try {
      off.add(parseTarget('203.0.113.42'), 300);
      await off.commit();
      expect(off.netlinkCommits.sent).toBe(0);
      expect(elements('blocklist_v4').some((e) => e.val === '203.0.113.42')).toBe(true);
    } finally {
      await off.shutdown();
    }
    expect(fw.netlinkCommits).toEqual(before);
  });
});

import { describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/core/address.js';
import { encodeIpsetChanges, type IpsetChange } from '../../src/firewall/ipset-netlink.js';

/** The messages of an encoded batch: type, flags, seq, family, and the raw attributes. */
function messages(bytes: Buffer) {
  const out: { type: number; flags: number; seq: number; family: number; attrs: Buffer }[] = [];
  for (let off = 0; off < bytes.length; ) {
    const len = bytes.readUInt32LE(off);
    out.push({
      type: bytes.readUInt16LE(off + 4),
      flags: bytes.readUInt16LE(off + 6),
      seq: bytes.readUInt32LE(off + 8),
      family: bytes[off + 16]!,
      attrs: bytes.subarray(off + 20, off + len),
    });
    off += (len + 3) & ~3;
  }
  return out;
}

/** Top-level attributes by type (flags masked off). */
function attrs(buf: Buffer): Map<number, Buffer[]> {
  const out = new Map<number, Buffer[]>();
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2) & 0x3fff;
    const list = out.get(type) ?? [];
    list.push(buf.subarray(off + 4, off + len));
    out.set(type, list);
    off += (len + 3) & ~3;
  }
  return out;
}

const change = (
  set: string,
  text: string,
  op: 'add' | 'delete',
  timeout: number | null,
  cidr = false,
): IpsetChange => ({
  set,
  target: parseTarget(text),
  op,
  timeout,
  cidr,
});

describe('ipset element messages: encoding', () => {
  it('one ADD or DEL per run of the same set, family and op, in order; each acked, protocol 6, set name, line 0', () => {
    const b = encodeIpsetChanges(
      [
        change('bl', '192.0.2.1', 'add', 600),
        change('bl', '192.0.2.2', 'add', 0),
        change('bl', '192.0.2.3', 'delete', null),
        change('bl', '192.0.2.4', 'add', 60),
        change('bl6', '2001:db8::1', 'add', 60),
      ],
      40,
    );
    const ms = messages(b.bytes);
    // (NFNL_SUBSYS_IPSET 6 << 8) | ADD 9 / DEL 10; request + ack, never EXCL (as under -exist).
    expect(ms.map((m) => [m.type, m.flags, m.seq, m.family])).toEqual([
      [0x609, 5, 40, 2],
      [0x60a, 5, 41, 2],
      [0x609, 5, 42, 2],
      [0x609, 5, 43, 10],
    ]);
    expect(b.acked).toEqual([40, 41, 42, 43]);
    const first = attrs(ms[0]!.attrs);
    expect(first.get(1)![0]![0]).toBe(6);
    expect(first.get(2)![0]!.toString()).toBe('bl\0');
    expect(first.get(9)![0]!.readUInt32LE(0)).toBe(0);
    // The ADT list holds one data entry per element: the address (network order) and timeout.
    const data = attrs(first.get(8)![0]!).get(7)!;
    expect(data).toHaveLength(2);
    const one = attrs(data[0]!);
    expect(attrs(one.get(1)![0]!).get(1)![0]!.toString('hex')).toBe('c0000201');
    expect(one.get(6)![0]!.readUInt32BE(0)).toBe(600);
    // Permanent: timeout 0. A delete carries no timeout.
    expect(attrs(data[1]!).get(6)![0]!.readUInt32BE(0)).toBe(0);
    expect(attrs(attrs(attrs(ms[1]!.attrs).get(8)![0]!).get(7)![0]!).has(6)).toBe(false);
  });

  it('IPv6 addresses are 16 bytes, hash:net entries carry the prefix length, a set without timeouts gets none', () => {
    const b = encodeIpsetChanges(
      [change('n6', '2001:db8:1::/48', 'add', null, true), change('n4', '198.51.100.0/24', 'add', 30, true)],
      1,
    );
    const [v6, v4] = messages(b.bytes).map((m) => attrs(attrs(attrs(m.attrs).get(8)![0]!).get(7)![0]!));
    expect(attrs(v6!.get(1)![0]!).get(2)![0]!.toString('hex')).toBe('20010db8000100000000000000000000');
    expect(v6!.get(3)![0]![0]).toBe(48);
    expect(v6!.has(6)).toBe(false);
    expect(v4!.get(3)![0]![0]).toBe(24);
    expect(v4!.get(6)![0]!.readUInt32BE(0)).toBe(30);
  });

  it('a run longer than a message holds is split, and a reused scratch buffer encodes the same bytes', () => {
    const many = Array.from({ length: 2500 }, (_, i) =>
      change('big', `10.0.${i >> 8}.${i & 255}`, 'add', 3600),
    );
    const fresh = encodeIpsetChanges(many, 7);
    expect(messages(fresh.bytes).map((m) => attrs(attrs(m.attrs).get(8)![0]!).get(7)!.length)).toEqual([
      1000, 1000, 500,
    ]);
    const scratch = Buffer.alloc(512 * 1024, 0xee);
    expect(encodeIpsetChanges(many, 7, scratch).bytes.equals(fresh.bytes)).toBe(true);
  });
});

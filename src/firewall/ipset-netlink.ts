import type { Target } from '../core/address.js';
import {
  align4,
  type EncodedBatch,
  NetlinkWriter,
  NLA_F_NESTED,
  NLA_F_NET_BYTEORDER,
  NLM_F_ACK,
  NLM_F_REQUEST,
  u16le,
  u32be,
  writeAddress,
  zeroed,
} from './netlink-message.js';

/**
 * ipset element changes as netlink messages encoded here: what `ipset -exist restore` sends for
 * `add`/`del` lines, without libipset parsing each line of a script first (that parse, and
 * writing the script, made a bulk load through the library 1.24× a bare `ipset restore` of the
 * same elements; ADR 0072).
 *
 * One message per run of consecutive changes to the same set and of the same kind (add or
 * delete), at most ELEMENTS_PER_MESSAGE each: IPSET_CMD_ADD / IPSET_CMD_DEL with the protocol
 * version, the set name and an IPSET_ATTR_ADT list of IPSET_ATTR_DATA entries (the address, a
 * prefix length for hash:net, the timeout in seconds when the set has timeouts). The kernel
 * applies the messages in order, each element on its own (ipset has no transactions); without
 * NLM_F_EXCL an add of a present element refreshes it and a delete of an absent one is no error,
 * as under `-exist`. Every message asks for an ack. On anything but a clean ack for every one the
 * caller sends the same changes as a script: every change is idempotent, so what the messages
 * already applied is applied again, and the script path names any element the kernel refuses.
 */

const NFNL_SUBSYS_IPSET = 6;
const IPSET_CMD_ADD = 9;
const IPSET_CMD_DEL = 10;
/** Protocol 6 is what every kernel since 2.6.39 accepts (newer ones take 6 and 7). */
const IPSET_PROTOCOL = 6;
const IPSET_ATTR_PROTOCOL = 1;
const IPSET_ATTR_SETNAME = 2;
const IPSET_ATTR_DATA = 7;
const IPSET_ATTR_ADT = 8;
const IPSET_ATTR_LINENO = 9;
const IPSET_ATTR_IP = 1;
const IPSET_ATTR_CIDR = 3;
const IPSET_ATTR_TIMEOUT = 6;
const IPSET_ATTR_IPADDR_IPV4 = 1;
const IPSET_ATTR_IPADDR_IPV6 = 2;
const NFPROTO_IPV4 = 2;
const NFPROTO_IPV6 = 10;

/** Elements per message: the ADT list is one attribute with a 16-bit length (IPv6 with timeout: 44 bytes each). */
const ELEMENTS_PER_MESSAGE = 1000;

/** At most this many changes are sent in one call (the kernel applies them within the send). */
export const IPSET_NETLINK_MAX = 2000;

/** One change to one ipset set of type hash:ip or hash:net. */
export interface IpsetChange {
  set: string;
  target: Target;
  op: 'add' | 'delete';
  /** Seconds (0: no expiry) for a set with timeouts; null: the set has none, so no attribute. */
  timeout: number | null;
  /** Send the prefix length (a hash:net set). */
  cidr: boolean;
}

/** Bytes one element takes at most: data entry, nested address (IPv6), prefix length, timeout. */
const ELEMENT_MAX = 4 + 4 + 20 + 8 + 8;

/** One IPSET_ATTR_DATA entry at `at` (zeroed bytes); returns where the next one goes. */
function writeData(out: Uint8Array, at: number, c: IpsetChange): number {
  const v4 = c.target.family === 4;
  const addrLen = v4 ? 4 : 16;
  const ipLen = 4 + 4 + addrLen;
  const len = 4 + ipLen + (c.cidr ? 8 : 0) + (c.op === 'add' && c.timeout !== null ? 8 : 0);
  u16le(out, at, len);
  u16le(out, at + 2, IPSET_ATTR_DATA | NLA_F_NESTED);
  u16le(out, at + 4, ipLen);
  u16le(out, at + 6, IPSET_ATTR_IP | NLA_F_NESTED);
  u16le(out, at + 8, 4 + addrLen);
  // The kernel takes an address only when flagged as network byte order.
  u16le(out, at + 10, (v4 ? IPSET_ATTR_IPADDR_IPV4 : IPSET_ATTR_IPADDR_IPV6) | NLA_F_NET_BYTEORDER);
  writeAddress(out, at + 12, c.target);
  let p = at + 4 + ipLen;
  if (c.cidr) {
    u16le(out, p, 5);
    u16le(out, p + 2, IPSET_ATTR_CIDR);
    out[p + 4] = c.target.prefix;
    p += 8;
  }
  if (c.op === 'add' && c.timeout !== null) {
    u16le(out, p, 8);
    u16le(out, p + 2, IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER);
    u32be(out, p + 4, c.timeout);
    p += 8;
  }
  return p;
}

/** `changes[from, to)` as data entries at the writer's offset. */
function writeDataList(w: NetlinkWriter, changes: IpsetChange[], from: number, to: number): void {
  let at = w.at;
  for (let i = from; i < to; i++) at = writeData(w.out, at, changes[i]!);
  w.at = at;
}

/** Where the run of changes like `changes[from]` (same set, family and op) ends, within `max`. */
function runEnd(changes: IpsetChange[], from: number, max: number): number {
  const first = changes[from]!;
  let to = from + 1;
  while (
    to < changes.length &&
    to - from < max &&
    changes[to]!.set === first.set &&
    changes[to]!.op === first.op &&
    changes[to]!.target.family === first.target.family
  )
    to++;
  return to;
}

/**
 * The messages for `changes`, in their order, numbered from `seq`. `scratch`: the caller's buffer,
 * written into when big enough (the bytes are then valid until its next call).
 */
export function encodeIpsetChanges(changes: IpsetChange[], seq: number, scratch?: Buffer): EncodedBatch {
  let longest = 0;
  const names = new Set<string>();
  for (let i = 0; i < changes.length; i++) names.add(changes[i]!.set);
  for (const n of names) longest = Math.max(longest, Buffer.byteLength(n));
  // Header, protocol, set name, line number, list header: at most this per message; at most one
  // message per change.
  const head = 20 + 8 + 4 + align4(longest + 1) + 8 + 4;
  const w = new NetlinkWriter(zeroed(changes.length * (head + ELEMENT_MAX), scratch));
  const acked: number[] = [];
  for (let from = 0; from < changes.length; ) {
    const to = runEnd(changes, from, ELEMENTS_PER_MESSAGE);
    const first = changes[from]!;
    acked.push(seq);
    const m = w.message(
      (NFNL_SUBSYS_IPSET << 8) | (first.op === 'add' ? IPSET_CMD_ADD : IPSET_CMD_DEL),
      NLM_F_REQUEST | NLM_F_ACK,
      seq++,
      first.target.family === 4 ? NFPROTO_IPV4 : NFPROTO_IPV6,
      0,
    );
    w.u8(IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
    w.string(IPSET_ATTR_SETNAME, first.set);
    // The kernel takes an ADT list only with a line number beside it (restore's; ours is 0).
    w.u32(IPSET_ATTR_LINENO, 0);
    const list = w.open(IPSET_ATTR_ADT | NLA_F_NESTED);
    writeDataList(w, changes, from, to);
    w.close(list);
    w.end(m);
    from = to;
  }
  return { bytes: w.bytes(), acked };
}

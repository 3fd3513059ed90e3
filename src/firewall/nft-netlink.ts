import type { Target } from '../core/address.js';
import {
  align4,
  type EncodedBatch,
  NetlinkWriter,
  NLA_F_NESTED,
  NLM_F_ACK,
  NLM_F_REQUEST,
  u16le,
  u32be,
  writeAddress,
  zeroed,
} from './netlink-message.js';

/**
 * Set-element changes as one nf_tables netlink transaction, encoded here, for commits to plain
 * (non-interval) sets: the single-ban path (ADR 0042), and bulk loads as several transactions of
 * NETLINK_MAX_ELEMENTS (ADR 0048).
 *
 * Why not the libnftables text path for these: libnftables 1.0.6 (Debian 12) refreshes its whole
 * cache after every commit it makes, so each later command first dumps every table, chain and set
 * of the namespace and every element of rampart's interval sets (seven netlink round trips before
 * a one-element transaction, growing with the host's ruleset and with the CIDR bans held). The
 * kernel needs none of that to add an address to a set whose name it is given.
 *
 * The messages are what `nft add element` / `nft delete element` send: a batch begin, one
 * NEWSETELEM / DELSETELEM per set and operation (table, set, nested elements with a key and an
 * optional timeout in milliseconds), a batch end. Every element message asks for an ack, so the
 * caller knows each one was applied; the kernel applies the whole batch or nothing. Anything but a
 * clean ack for every message sends the same changes down the text path, which reports errors in
 * the words of the rest of the backend.
 */

const NLM_F_CREATE = 0x400;
const NFNL_SUBSYS_NFTABLES = 10;
const NFNL_MSG_BATCH_BEGIN = 0x10;
const NFNL_MSG_BATCH_END = 0x11;
const NFT_MSG_NEWSETELEM = 12;
const NFT_MSG_DELSETELEM = 14;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_LIST_ELEM = 1;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_TIMEOUT = 4;
const NFTA_DATA_VALUE = 1;

/** nfgen_family for an nftables table family. */
export const NFPROTO: Readonly<Record<string, number>> = {
  inet: 1,
  ip: 2,
  arp: 3,
  netdev: 5,
  bridge: 7,
  ip6: 10,
};

/**
 * At most this many element changes go in one netlink transaction: the kernel handles it inside
 * the calling thread's `send`, about 1-2 µs an element, so this bounds that stall to a few ms.
 */
export const NETLINK_MAX_ELEMENTS = 2000;

/**
 * Elements per message: a message's element list is one attribute, whose length field is 16 bits
 * (64 KiB: 1,638 IPv6 elements with timeouts).
 */
const ELEMENTS_PER_MESSAGE = 1000;

/** One change to one plain set: an address added (with seconds left, null = no timeout) or removed. */
export interface ElementChange {
  set: string;
  target: Target;
  op: 'add' | 'delete';
  /** Seconds the element lives (add only); null: until deleted. */
  timeout: number | null;
}

/** The address as the set key holds it: 4 or 16 bytes in network order. */
export function keyBytes(t: Target): Buffer {
  const out = Buffer.alloc(t.family === 4 ? 4 : 16);
  writeAddress(out, 0, t);
  return out;
}

/**
 * One element of a NEWSETELEM / DELSETELEM list at `at` (zeroed bytes): the nested list entry,
 * its nested key holding the address, and the timeout in milliseconds (64 bits, network order)
 * when `timeoutMs` is not null. Returns where the next element goes.
 */
function writeElement(out: Uint8Array, at: number, t: Target, timeoutMs: number | null): number {
  const keyLen = t.family === 4 ? 4 : 16;
  const len = 12 + keyLen + (timeoutMs === null ? 0 : 12);
  u16le(out, at, len);
  u16le(out, at + 2, NFTA_LIST_ELEM | NLA_F_NESTED);
  u16le(out, at + 4, 8 + keyLen);
  u16le(out, at + 6, NFTA_SET_ELEM_KEY | NLA_F_NESTED);
  u16le(out, at + 8, 4 + keyLen);
  u16le(out, at + 10, NFTA_DATA_VALUE);
  writeAddress(out, at + 12, t);
  if (timeoutMs !== null) {
    const p = at + 12 + keyLen;
    u16le(out, p, 12);
    u16le(out, p + 2, NFTA_SET_ELEM_TIMEOUT);
    // Two 32-bit halves rather than a BigInt per element (a bulk commit writes thousands).
    u32be(out, p + 4, Math.floor(timeoutMs / 0x1_0000_0000));
    u32be(out, p + 8, timeoutMs >>> 0);
  }
  return at + len;
}

/** `changes[from, to)` as list elements at the writer's offset, with their timeouts when `withTimeout`. */
function writeElements(
  w: NetlinkWriter,
  changes: ElementChange[],
  from: number,
  to: number,
  withTimeout: boolean,
): void {
  let at = w.at;
  for (let i = from; i < to; i++) {
    const c = changes[i]!;
    at = writeElement(w.out, at, c.target, withTimeout && c.timeout !== null ? c.timeout * 1000 : null);
  }
  w.at = at;
}

/**
 * The changes by set, adds and deletes apart, in their order. Its own small function, like
 * `Writer.elements`: the per-element loops are what V8 finds hot and optimises, and compiling
 * them alone costs a fraction of compiling the whole encoder around them (ADR 0057).
 */
function groupBySet(changes: ElementChange[]): Map<string, { adds: ElementChange[]; dels: ElementChange[] }> {
  const bySet = new Map<string, { adds: ElementChange[]; dels: ElementChange[] }>();
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    let g = bySet.get(c.set);
    if (!g) {
      g = { adds: [], dels: [] };
      bySet.set(c.set, g);
    }
    if (c.op === 'add') g.adds.push(c);
    else g.dels.push(c);
  }
  return bySet;
}

/** Bytes one element takes at most: list entry, key (nested value), timeout. */
const ELEMENT_MAX = 4 + 4 + 20 + 12;

/**
 * The transaction for `changes`, numbered from `seq`. A delete first adds the element without a
 * timeout in the same transaction, as the text path does: deleting an element that already
 * expired would otherwise fail the whole batch.
 */
export function encodeElementBatch(
  family: string,
  table: string,
  changes: ElementChange[],
  seq: number,
  /**
   * Written into when big enough: the caller's buffer reused between batches (the bytes are then
   * valid until its next call), instead of a fresh one of up to 160 KB per 2,000 elements.
   */
  scratch?: Buffer,
): EncodedBatch {
  const fam = NFPROTO[family];
  if (fam === undefined) throw new Error(`no netlink family for nftables family ${family}`);
  const bySet = groupBySet(changes);
  // Exact message count; each message at most header, table, the longest set name, list header.
  let messages = 0;
  let longest = 0;
  const per = (n: number) => Math.ceil(n / ELEMENTS_PER_MESSAGE);
  for (const [set, g] of bySet) {
    messages += 2 * per(g.dels.length) + per(g.adds.length);
    longest = Math.max(longest, Buffer.byteLength(set));
  }
  const head = 20 + 4 + align4(Buffer.byteLength(table) + 1) + 4 + align4(longest + 1) + 4;
  const size = 2 * 20 + messages * head + changes.length * 2 * ELEMENT_MAX;
  const w = new NetlinkWriter(zeroed(size, scratch));
  const acked: number[] = [];
  w.end(w.message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES));
  const push = (type: number, flags: number, set: string, list: ElementChange[], withTimeout: boolean) => {
    for (let from = 0; from < list.length; from += ELEMENTS_PER_MESSAGE) {
      acked.push(seq);
      const m = w.message(
        (NFNL_SUBSYS_NFTABLES << 8) | type,
        NLM_F_REQUEST | NLM_F_ACK | flags,
        seq++,
        fam,
        0,
      );
      w.string(NFTA_SET_ELEM_LIST_TABLE, table);
      w.string(NFTA_SET_ELEM_LIST_SET, set);
      const elems = w.open(NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED);
      writeElements(w, list, from, Math.min(list.length, from + ELEMENTS_PER_MESSAGE), withTimeout);
      w.close(elems);
      w.end(m);
    }
  };
  for (const [set, g] of bySet) {
    if (g.dels.length > 0) {
      push(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, g.dels, false);
      push(NFT_MSG_DELSETELEM, 0, set, g.dels, false);
    }
    if (g.adds.length > 0) push(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, g.adds, true);
  }
  w.end(w.message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES));
  return { bytes: w.bytes(), acked };
}

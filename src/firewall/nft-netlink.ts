import type { Target } from '../core/address.js';

/**
 * Set-element changes as one nf_tables netlink transaction, encoded here, for small commits to
 * plain (non-interval) sets: the single-ban path (ADR 0042).
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

const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CREATE = 0x400;
const NLA_F_NESTED = 0x8000;
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

/** At most this many element changes go in one netlink transaction (well under 64 KiB). */
export const NETLINK_MAX_ELEMENTS = 256;

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
  const size = t.family === 4 ? 4 : 16;
  const out = Buffer.alloc(size);
  let v = t.first;
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const align4 = (n: number) => (n + 3) & ~3;

/** A netlink attribute: header, payload, padding to 4 bytes. */
function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(align4(4 + payload.length));
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

const nested = (type: number, parts: Buffer[]) => attr(type | NLA_F_NESTED, Buffer.concat(parts));
const cstring = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function be64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** nlmsghdr + nfgenmsg + attributes. */
function message(type: number, flags: number, seq: number, family: number, resId: number, body: Buffer[]) {
  const payload = Buffer.concat(body);
  const out = Buffer.alloc(16 + 4 + payload.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(type, 4);
  out.writeUInt16LE(flags, 6);
  out.writeUInt32LE(seq >>> 0, 8);
  out.writeUInt32LE(0, 12);
  out.writeUInt8(family, 16);
  out.writeUInt8(0, 17);
  out.writeUInt16BE(resId, 18);
  payload.copy(out, 20);
  return out;
}

function element(change: ElementChange, withTimeout: boolean): Buffer {
  const parts = [nested(NFTA_SET_ELEM_KEY, [attr(NFTA_DATA_VALUE, keyBytes(change.target))])];
  if (withTimeout && change.timeout !== null)
    parts.push(attr(NFTA_SET_ELEM_TIMEOUT, be64(change.timeout * 1000)));
  return nested(NFTA_LIST_ELEM, parts);
}

export interface EncodedBatch {
  bytes: Buffer;
  /** Sequence numbers of the messages that must each be acked. */
  acked: number[];
}

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
): EncodedBatch {
  const fam = NFPROTO[family];
  if (fam === undefined) throw new Error(`no netlink family for nftables family ${family}`);
  const bySet = new Map<string, { adds: ElementChange[]; dels: ElementChange[] }>();
  for (const c of changes) {
    let g = bySet.get(c.set);
    if (!g) {
      g = { adds: [], dels: [] };
      bySet.set(c.set, g);
    }
    (c.op === 'add' ? g.adds : g.dels).push(c);
  }
  const msgs: Buffer[] = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES, [])];
  const acked: number[] = [];
  const head = (set: string) => [
    attr(NFTA_SET_ELEM_LIST_TABLE, cstring(table)),
    attr(NFTA_SET_ELEM_LIST_SET, cstring(set)),
  ];
  const push = (type: number, flags: number, set: string, list: ElementChange[], withTimeout: boolean) => {
    acked.push(seq);
    msgs.push(
      message((NFNL_SUBSYS_NFTABLES << 8) | type, NLM_F_REQUEST | NLM_F_ACK | flags, seq++, fam, 0, [
        ...head(set),
        nested(
          NFTA_SET_ELEM_LIST_ELEMENTS,
          list.map((c) => element(c, withTimeout)),
        ),
      ]),
    );
  };
  for (const [set, g] of bySet) {
    if (g.dels.length > 0) {
      push(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, g.dels, false);
      push(NFT_MSG_DELSETELEM, 0, set, g.dels, false);
    }
    if (g.adds.length > 0) push(NFT_MSG_NEWSETELEM, NLM_F_CREATE, set, g.adds, true);
  }
  msgs.push(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq++, 0, NFNL_SUBSYS_NFTABLES, []));
  return { bytes: Buffer.concat(msgs), acked };
}

/** What the kernel answered: every message acked, or the first error (errno, positive). */
export type BatchAnswer = { ok: true } | { ok: false; errno: number; seq?: number };

/** Reads the acks (NLMSG_ERROR with error 0) and errors the kernel queued for a batch. */
export function readAnswer(reply: Buffer, acked: number[]): BatchAnswer {
  const waiting = new Set(acked);
  for (let off = 0; off + 16 <= reply.length; ) {
    const len = reply.readUInt32LE(off);
    if (len < 16 || off + len > reply.length) return { ok: false, errno: 0 };
    const type = reply.readUInt16LE(off + 4);
    const seq = reply.readUInt32LE(off + 8);
    if (type === NLMSG_ERROR && len >= 20) {
      const error = reply.readInt32LE(off + 16);
      if (error !== 0) return { ok: false, errno: -error, seq };
      waiting.delete(seq);
    }
    off += align4(len);
  }
  // An ack missing is not a success: the caller takes the text path, which settles it.
  return waiting.size === 0 ? { ok: true } : { ok: false, errno: 0 };
}

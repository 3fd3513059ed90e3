import { ParsedHost, parseIPv4, type Target, tryParseTarget, writeBigEndian } from '../core/address.js';

/**
 * Writing nfnetlink messages and reading the kernel's acks, shared by the nf_tables element
 * batches (nft-netlink.ts) and the ipset element messages (ipset-netlink.ts).
 */

export const NLMSG_ERROR = 2;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;

export const align4 = (n: number) => (n + 3) & ~3;

// Byte stores rather than Buffer's writeUInt* methods: those check their arguments and ranges on
// every call, which was a tenth of an agent's bulk commit, and V8's optimising compiler spent more
// on the encoder's inlined checks than on any other function of the bus path (ADR 0057). Every
// value written here is in range by construction; the buffer is sized up front.
export function u16le(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
}
export function u32le(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}
export function u32be(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >>> 24) & 0xff;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

/** Writes the address as the kernel holds it (4 or 16 bytes, network order) at `at`. */
export function writeAddress(out: Uint8Array, at: number, t: Target): void {
  if (t.family === 4) u32be(out, at, Number(t.first));
  else writeBigEndian(t.first, out, at, 16);
}

/**
 * Whether a target's text names exactly the address its numbers hold: the netlink paths encode
 * the numbers, the script paths the text, so a target whose two disagree (never one parseTarget
 * made) goes the script path, which refuses it by name.
 */
export function selfConsistent(t: Target): boolean {
  // Made from its text by parseTarget (every target a decision or a detection carries).
  if (t instanceof ParsedHost) return true;
  // A plain IPv4 address (most bans) is checked without making BigInts on the single-ban path.
  const v4 = t.family === 4 ? parseIPv4(t.text) : null;
  if (v4 !== null) return Number(t.first) === v4 && t.last === t.first;
  const p = tryParseTarget(t.text);
  return p !== null && p.family === t.family && p.first === t.first && p.last === t.last;
}

/** Attributes and message headers into a zeroed buffer sized by the caller. */
export class NetlinkWriter {
  /** Where the next byte goes; element loops write past it and move it on. */
  at = 0;
  constructor(readonly out: Buffer) {}
  /** Opens an attribute; returns where its length goes (fixed by `close`). */
  open(type: number): number {
    const start = this.at;
    u16le(this.out, start + 2, type);
    this.at += 4;
    return start;
  }
  close(start: number): void {
    u16le(this.out, start, this.at - start);
    this.at = align4(this.at);
  }
  string(type: number, s: string): void {
    const a = this.open(type);
    this.at += this.out.write(s, this.at, 'utf8');
    this.out[this.at++] = 0;
    this.close(a);
  }
  u8(type: number, v: number): void {
    const a = this.open(type);
    this.out[this.at++] = v;
    this.close(a);
  }
  u32(type: number, v: number): void {
    const a = this.open(type);
    u32le(this.out, this.at, v >>> 0);
    this.at += 4;
    this.close(a);
  }
  /** nlmsghdr + nfgenmsg; returns where the length goes (fixed by `end`). */
  message(type: number, flags: number, seq: number, family: number, resId: number): number {
    const start = this.at;
    u16le(this.out, start + 4, type);
    u16le(this.out, start + 6, flags);
    u32le(this.out, start + 8, seq >>> 0);
    u32le(this.out, start + 12, 0);
    this.out[start + 16] = family;
    this.out[start + 17] = 0;
    this.out[start + 18] = (resId >>> 8) & 0xff;
    this.out[start + 19] = resId & 0xff;
    this.at += 20;
    return start;
  }
  end(start: number): void {
    u32le(this.out, start, this.at - start);
  }
  /** The bytes written so far. */
  bytes(): Buffer {
    return this.out.subarray(0, this.at);
  }
}

/**
 * A zeroed buffer of `size`: the caller's reused scratch buffer when it is big enough, otherwise
 * one from Node's shared pool (a small batch per ban must not make an ArrayBuffer of its own,
 * which the GC would track and sweep). Zeroed because attribute padding must not carry stale
 * bytes.
 */
export function zeroed(size: number, scratch?: Buffer): Buffer {
  return scratch && scratch.length >= size ? scratch.fill(0, 0, size) : Buffer.allocUnsafe(size).fill(0);
}

export interface EncodedBatch {
  bytes: Buffer;
  /** Sequence numbers of the messages that must each be acked. */
  acked: number[];
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

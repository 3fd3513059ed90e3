import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** Bytes one connection may hand the broker per event-loop turn (see {@link guardPacketSize}). */
export const TURN_BYTES = 4 * 1024;

/**
 * Wraps a broker connection so that an MQTT packet declaring more than `maxBytes` closes the
 * connection as soon as its fixed header arrives. aedes has no packet size limit, and MQTT allows
 * 256 MB per packet: without this, any client that can open a TCP connection (even before
 * CONNECT authenticates it) could make the hub buffer that much.
 *
 * It also hands the broker at most `turnBytes` of one connection per event-loop turn, holding the
 * rest and pausing the socket (TCP pushes back on the sender). Without it one flooding client
 * filled each turn with thousands of packets (a socket is read up to 32 × 64 KiB at a time), and
 * every step of another node's report, and of the decision going out, waited a turn each
 * (ADR 0027).
 */
/** A guarded connection; {@link GuardedConnection.holdFor} stops handing its bytes to the broker. */
export interface GuardedConnection extends Duplex {
  /**
   * Reads nothing more from this connection for `ms` (what it sends waits in its own TCP buffers,
   * then in the sender's): how the hub slows a node whose messages it keeps refusing. Bytes the
   * broker already has are still handled; nothing is dropped.
   */
  holdFor(ms: number): void;
}

export function guardPacketSize(
  socket: Socket,
  maxBytes: number,
  onViolation: (declared: number) => void,
  turnBytes = TURN_BYTES,
): GuardedConnection {
  const framing = new MqttFraming(maxBytes);
  // A decision must not wait for Nagle and the peer's delayed ACK (about 40 ms per round trip).
  socket.setNoDelay(true);
  let held: Buffer | undefined;
  let budget = turnBytes;
  let refill = false;
  let ended = false;
  let heldUntil = 0;
  let wake: NodeJS.Timeout | undefined;
  // Moves held bytes to the broker while this turn's share lasts and the broker's buffer has room.
  // Whenever bytes stay held, something calls this again: the next turn's refill (share spent)
  // or the stream's read() (buffer drained).
  const pump = () => {
    if (heldUntil > 0) {
      const left = heldUntil - performance.now();
      if (left > 0) {
        socket.pause();
        wake ??= setTimeout(() => {
          wake = undefined;
          if (!guarded.destroyed) pump();
        }, Math.ceil(left));
        return;
      }
      heldUntil = 0;
    }
    const room = () => guarded.readableLength < guarded.readableHighWaterMark;
    while (held !== undefined && budget > 0 && room()) {
      const n = Math.min(budget, held.length);
      const part = n === held.length ? held : held.subarray(0, n);
      held = n === held.length ? undefined : held.subarray(n);
      budget -= n;
      guarded.push(part);
    }
    if (held === undefined && ended) {
      ended = false;
      guarded.push(null);
    }
    if (held !== undefined || !room()) socket.pause();
    else socket.resume();
    if (budget <= 0 && !refill) {
      refill = true;
      setImmediate(() => {
        refill = false;
        budget = turnBytes;
        if (!guarded.destroyed) pump();
      });
    }
  };
  const guarded = new Duplex({
    read() {
      pump();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    // Keep aedes' corked batches (e.g. PUBACK + forwarded PUBLISH) in one TCP segment.
    writev(chunks, cb) {
      socket.cork();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) socket.write(chunks[i]!.chunk);
      socket.write(chunks[last]!.chunk, cb);
      socket.uncork();
    },
    final(cb) {
      socket.end(cb);
    },
    destroy(err, cb) {
      if (wake) clearTimeout(wake);
      socket.destroy();
      cb(err);
    },
  });
  const connection = guarded as GuardedConnection;
  connection.holdFor = (ms: number) => {
    heldUntil = Math.max(heldUntil, performance.now() + ms);
    if (wake) {
      clearTimeout(wake);
      wake = undefined;
    }
    pump();
  };
  socket.on('data', (chunk: Buffer) => {
    const declared = framing.feed(chunk);
    if (declared !== null) {
      onViolation(declared);
      guarded.destroy();
      return;
    }
    held = held === undefined ? chunk : Buffer.concat([held, chunk]);
    pump();
  });
  socket.on('end', () => {
    ended = true;
    pump();
  });
  socket.on('close', () => {
    // Bytes still held (or not yet read by the broker) were sent before the client closed: let
    // the broker have them (a burst of publishes then DISCONNECT), then let go.
    if (held === undefined && guarded.readableLength === 0) return guarded.destroy();
    guarded.once('end', () => guarded.destroy());
    ended = true;
    pump();
  });
  socket.on('error', (err) => guarded.destroy(err));
  return connection;
}

/**
 * Follows MQTT 3.1.1 framing (section 2.2: one header byte, then the remaining length in 1-4
 * bytes of 7 bits each) without buffering bodies.
 */
class MqttFraming {
  private state: 'type' | 'len' | 'body' = 'type';
  private len = 0;
  private mult = 1;
  private lenBytes = 0;
  private remaining = 0;

  constructor(private readonly maxBytes: number) {}

  /** Returns the offending declared length (or -1 for a malformed length), else null. */
  feed(chunk: Buffer): number | null {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        if (this.remaining === 0) this.state = 'type';
      } else if (this.state === 'type') {
        this.state = 'len';
        this.len = 0;
        this.mult = 1;
        this.lenBytes = 0;
        i++;
      } else {
        const b = chunk[i++]!;
        this.len += (b & 0x7f) * this.mult;
        this.mult *= 128;
        this.lenBytes++;
        if (b & 0x80) {
          if (this.lenBytes === 4) return -1;
          continue;
        }
        if (this.len > this.maxBytes) return this.len;
        this.remaining = this.len;
        this.state = this.len > 0 ? 'body' : 'type';
      }
    }
    return null;
  }
}

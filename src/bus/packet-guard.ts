import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * Wraps a broker connection so that an MQTT packet declaring more than `maxBytes` closes the
 * connection as soon as its fixed header arrives. aedes has no packet size limit, and MQTT allows
 * 256 MB per packet: without this, any client that can open a TCP connection (even before
 * CONNECT authenticates it) could make the hub buffer that much.
 */
export function guardPacketSize(
  socket: Socket,
  maxBytes: number,
  onViolation: (declared: number) => void,
): Duplex {
  const framing = new MqttFraming(maxBytes);
  // A decision must not wait for Nagle and the peer's delayed ACK (about 40 ms per round trip).
  socket.setNoDelay(true);
  const guarded = new Duplex({
    read() {
      socket.resume();
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
      socket.destroy();
      cb(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    const declared = framing.feed(chunk);
    if (declared !== null) {
      onViolation(declared);
      guarded.destroy();
      return;
    }
    if (!guarded.push(chunk)) socket.pause();
  });
  socket.on('end', () => guarded.push(null));
  socket.on('close', () => guarded.destroy());
  socket.on('error', (err) => guarded.destroy(err));
  return guarded;
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

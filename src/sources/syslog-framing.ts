/**
 * Syslog over TCP comes in two framings (RFC 6587): octet-counting (`LEN SP MSG`, §3.4.1, what
 * `logger --octet-count` and RFC 5425-style senders use) and non-transparent (messages ended by LF,
 * §3.4.2, rsyslog's traditional default). The framing is detected per frame from its first byte,
 * as rsyslog does: a digit starts an octet count, anything else a line. Frames longer than
 * `maxBytes` are cut; the rest of them is skipped, so one hostile sender cannot grow our memory.
 */
export class SyslogFrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes still to drop from an over-long octet-counted frame. */
  private skipOctets = 0;
  /** Dropping the rest of an over-long line up to its LF. */
  private skipLine = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onFrame: (frame: Buffer, truncated: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length > 0 && this.step()) {
      // step() consumed something; go on.
    }
  }

  /** The peer closed: a last line without its LF is still a message. */
  end(): void {
    if (!this.skipLine && this.skipOctets === 0) {
      const rest = stripSeparators(this.buf);
      if (rest.length > 0) this.onFrame(rest.subarray(0, this.maxBytes), rest.length > this.maxBytes);
    }
    this.buf = Buffer.alloc(0);
  }

  /** Handles what it can at the head of the buffer; false when it needs more bytes. */
  private step(): boolean {
    if (this.skipOctets > 0) {
      const n = Math.min(this.skipOctets, this.buf.length);
      this.skipOctets -= n;
      this.buf = this.buf.subarray(n);
      return true;
    }
    if (this.skipLine) {
      const lf = this.buf.indexOf(0x0a);
      if (lf === -1) {
        this.buf = Buffer.alloc(0);
        return false;
      }
      this.skipLine = false;
      this.buf = this.buf.subarray(lf + 1);
      return true;
    }
    const start = leadingSeparators(this.buf);
    if (start > 0) {
      this.buf = this.buf.subarray(start);
      return true;
    }
    const b = this.buf;
    if (b[0]! >= 0x30 && b[0]! <= 0x39) {
      // MSG-LEN is NONZERO-DIGIT *DIGIT; ten digits are more than any sane frame.
      let i = 1;
      let len = b[0]! - 0x30;
      while (i < b.length && i < 11 && b[i]! >= 0x30 && b[i]! <= 0x39) len = len * 10 + b[i++]! - 0x30;
      if (i === b.length && i < 11) return false;
      if (b[i] === 0x20 && b[0] !== 0x30) return this.octetFrame(len, i + 1);
    }
    return this.lineFrame();
  }

  private octetFrame(len: number, header: number): boolean {
    const b = this.buf;
    if (len <= this.maxBytes) {
      if (b.length < header + len) return false;
      this.onFrame(b.subarray(header, header + len), false);
      this.buf = b.subarray(header + len);
      return true;
    }
    if (b.length < header + this.maxBytes) return false;
    this.onFrame(b.subarray(header, header + this.maxBytes), true);
    this.skipOctets = len - this.maxBytes;
    this.buf = b.subarray(header + this.maxBytes);
    return true;
  }

  private lineFrame(): boolean {
    const b = this.buf;
    const lf = b.indexOf(0x0a);
    if (lf === -1) {
      if (b.length <= this.maxBytes) return false;
      this.onFrame(b.subarray(0, this.maxBytes), true);
      this.skipLine = true;
      this.buf = b.subarray(this.maxBytes);
      return true;
    }
    const frame = b.subarray(0, lf);
    this.onFrame(frame.subarray(0, this.maxBytes), frame.length > this.maxBytes);
    this.buf = b.subarray(lf + 1);
    return true;
  }
}

/** LF, CR and NUL between frames (some senders end octet-counted frames with LF too). */
function leadingSeparators(b: Buffer): number {
  let i = 0;
  while (i < b.length && (b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x00)) i++;
  return i;
}

function stripSeparators(b: Buffer): Buffer {
  return b.subarray(leadingSeparators(b));
}

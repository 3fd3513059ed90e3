/** Default cap on one line: longer lines are cut here and the rest up to the newline dropped. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * Decodes bytes as UTF-8 without ever throwing: invalid sequences become U+FFFD, so hostile bytes
 * in a log line reach detection as text instead of killing the source.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}

/**
 * Splits a byte stream into newline-terminated lines. A partial last line is held until its
 * newline arrives (or `flush()`); a line longer than `maxBytes` is cut, its head emitted once with
 * `truncated = true`, and the rest discarded up to the next newline. A trailing `\r` is dropped so
 * CRLF logs look like LF logs.
 *
 * `pendingBytes` counts the bytes of the unfinished line (including a cut line's head), so a file
 * source's resume offset is simply `bytes pushed - pendingBytes`: always the start of a line.
 */
export class LineSplitter {
  /**
   * The unfinished line's bytes, `held` of them used. One buffer grown by doubling rather than a
   * list of chunks: a stream arriving a byte at a time would otherwise hold a Buffer object per
   * byte, about a hundred times the line's size.
   */
  private acc: Buffer = EMPTY;
  private held = 0;
  /** Inside an over-long line whose head was already emitted: drop bytes up to the newline. */
  private skipping = false;
  private skipped = 0;

  constructor(private readonly maxBytes = DEFAULT_MAX_LINE_BYTES) {}

  get pendingBytes(): number {
    return this.skipping ? this.skipped : this.held;
  }

  push(chunk: Buffer, emit: (text: string, truncated: boolean) => void): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.skipping) {
        if (nl === -1) {
          this.skipped += end - start;
          return;
        }
        this.skipping = false;
        this.skipped = 0;
        start = nl + 1;
        continue;
      }
      const piece = chunk.subarray(start, end);
      if (this.held + piece.length > this.maxBytes) {
        const head = Buffer.concat([
          this.acc.subarray(0, this.held),
          piece.subarray(0, this.maxBytes - this.held),
        ]);
        const seen = this.held + piece.length;
        this.release();
        emit(decodeLine(head), true);
        if (nl === -1) {
          this.skipping = true;
          this.skipped = seen;
          return;
        }
        start = nl + 1;
        continue;
      }
      if (nl === -1) {
        // Copy: the caller may reuse its read buffer.
        this.hold(piece);
        return;
      }
      const whole = this.held === 0 ? piece : Buffer.concat([this.acc.subarray(0, this.held), piece]);
      this.release();
      emit(decodeLine(whole), false);
      start = nl + 1;
    }
  }

  /** Emits a held partial line (the input ended without a final newline) and resets. */
  flush(emit: (text: string, truncated: boolean) => void): void {
    if (!this.skipping && this.held > 0) emit(decodeLine(this.acc.subarray(0, this.held)), false);
    this.reset();
  }

  /** Forgets any held bytes (the file under us was truncated or replaced). */
  reset(): void {
    this.acc = EMPTY;
    this.held = 0;
    this.skipping = false;
    this.skipped = 0;
  }

  private hold(piece: Buffer): void {
    const need = this.held + piece.length;
    if (need > this.acc.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.maxBytes, Math.max(need, 2 * this.acc.length, 256)));
      this.acc.copy(grown, 0, 0, this.held);
      this.acc = grown;
    }
    piece.copy(this.acc, this.held);
    this.held = need;
  }

  /** The line is out: keep a small buffer for the next one, give a large one back. */
  private release(): void {
    this.held = 0;
    if (this.acc.length > 64 * 1024) this.acc = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);

function decodeLine(bytes: Uint8Array): string {
  const n = bytes.length;
  return decodeUtf8(n > 0 && bytes[n - 1] === 0x0d ? bytes.subarray(0, n - 1) : bytes);
}

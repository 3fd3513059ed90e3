import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/sources/line-splitter.js';

function split(input: Buffer, chunkSizes: number[], max = 16): { lines: string[]; pending: number } {
  const sp = new LineSplitter(max);
  const lines: string[] = [];
  let at = 0;
  let k = 0;
  while (at < input.length) {
    const n = chunkSizes[k++ % chunkSizes.length]!;
    sp.push(input.subarray(at, at + n), (t, cut) => lines.push(cut ? `CUT:${t}` : t));
    at += n;
  }
  return { lines, pending: sp.pendingBytes };
}

describe('line splitter', () => {
  const input = Buffer.from(
    'short\r\n\nexactly-sixteen!\nseventeen-chars!!\nthis one is far too long for sixteen\ntail',
  );

  it('gives the same lines however the bytes are chunked', () => {
    const whole = split(input, [input.length]);
    expect(whole.lines).toEqual([
      'short',
      '',
      'exactly-sixteen!',
      'CUT:seventeen-chars!',
      'CUT:this one is far ',
    ]);
    expect(whole.pending).toBe(4);
    for (const sizes of [[1], [2, 3], [7], [5, 1, 16]]) expect(split(input, sizes)).toEqual(whole);
  });

  it('pendingBytes counts the unfinished line, so bytes pushed - pending is always a line start', () => {
    const sp = new LineSplitter(8);
    const noop = () => {};
    sp.push(Buffer.from('abc\nde'), noop);
    expect(sp.pendingBytes).toBe(2); // resume offset 4: the start of "de"
    sp.push(Buffer.from('fghijklmnop'), noop); // "de" + 11 bytes: cut, still unfinished
    expect(sp.pendingBytes).toBe(13);
    sp.push(Buffer.from('q\nr'), noop);
    expect(sp.pendingBytes).toBe(1);
  });

  it('flush emits a last line without newline; reset forgets it', () => {
    const sp = new LineSplitter();
    const out: string[] = [];
    sp.push(Buffer.from('a\nb'), (t) => out.push(t));
    sp.flush((t) => out.push(t));
    sp.push(Buffer.from('c'), (t) => out.push(t));
    sp.reset();
    sp.flush((t) => out.push(t));
    expect(out).toEqual(['a', 'b']);
  });

  it('holds a line arriving a byte at a time in about its own size, not an object per byte', () => {
    // Found by test/fuzz/detect.test.ts (seed -1724189585): 10 MB in 1-byte chunks grew RSS by
    // 126 MB, a Buffer object per held byte.
    const sp = new LineSplitter(1024 * 1024);
    const byte = Buffer.from('a');
    const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const before = used();
    for (let i = 0; i < 1_000_000; i++) sp.push(byte, () => undefined);
    expect(used() - before).toBeLessThan(16 * 1024 * 1024);
    let line = '';
    sp.flush((t) => {
      line = t;
    });
    expect(line.length).toBe(1_000_000);
  });
});

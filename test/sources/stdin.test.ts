import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StreamSource } from '../../src/sources/stdin.js';
import { collector } from './helpers.js';

describe('stream source', () => {
  it('splits chunks at newlines, keeps a last line without newline, resolves ended', async () => {
    const stream = new PassThrough();
    const c = collector();
    const s = new StreamSource({ stream, maxLineBytes: 8 });
    await s.start(c.push);
    stream.write('ab');
    stream.write('c\r\nd\n0123456789abc\nlast');
    stream.end();
    await s.ended;
    expect(c.lines).toEqual([
      { text: 'abc', source: 'stdin' },
      { text: 'd', source: 'stdin' },
      { text: '01234567', source: 'stdin' },
      { text: 'last', source: 'stdin' },
    ]);
    expect(s.truncatedLines).toBe(1);
  });

  it('reads a real pipe from another process to its end', async () => {
    const child = spawn('seq', ['-f', 'line %g', '1', '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const c = collector();
    const s = new StreamSource({ stream: child.stdout, name: 'seq' });
    await s.start(c.push);
    await s.ended;
    expect(c.lines).toHaveLength(100000);
    expect(c.lines[99999]).toEqual({ text: 'line 100000', source: 'seq' });
  });
});

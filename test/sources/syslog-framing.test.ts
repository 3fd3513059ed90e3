import { describe, expect, it } from 'vitest';
import { SyslogFrameDecoder } from '../../src/sources/syslog-framing.js';

function decode(chunks: (string | Buffer)[], max = 100): Array<[string, boolean]> {
  const out: Array<[string, boolean]> = [];
  const d = new SyslogFrameDecoder(max, (f, t) => out.push([f.toString('latin1'), t]));
  for (const c of chunks) d.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1'));
  d.end();
  return out;
}

describe('syslog tcp framing', () => {
  it('newline framing, with CRLF and NUL separators and a last line without LF', () => {
    expect(decode(['<13>a\n<13>b\r\n\0<13>', 'c'])).toEqual([
      ['<13>a', false],
      ['<13>b\r', false],
      ['<13>c', false],
    ]);
  });

  it('octet counting split across chunks at every byte, with LF inside the message kept', () => {
    const wire = '5 <13>a11 <13>x\ny z w\n'; // second frame holds an LF: counting, not lines
    const bytes = Buffer.from(wire, 'latin1');
    const out = decode([...bytes].map((b) => Buffer.from([b])));
    expect(out).toEqual([
      ['<13>a', false],
      ['<13>x\ny z w', false],
    ]);
  });

  it('mixed framings on one connection are told apart frame by frame', () => {
    expect(decode(['3 <1>', '<2>line\n', '4 <3>x'])).toEqual([
      ['<1>', false],
      ['<2>line', false],
      ['<3>x', false],
    ]);
  });

  it('over-long frames are cut once and the stream resynchronises', () => {
    const long = 'x'.repeat(250);
    expect(decode([`250 ${long}`, '4 <5>y'], 10)).toEqual([
      ['xxxxxxxxxx', true],
      ['<5>y', false],
    ]);
    expect(decode([`${long}`, `${long}\n<6>z\n`], 10)).toEqual([
      ['xxxxxxxxxx', true],
      ['<6>z', false],
    ]);
  });

  it('a digit run that is not a length (no space, too long, leading zero) is read as a line', () => {
    expect(decode(['123456789012345 not counted\n', '0 x\n'])).toEqual([
      ['123456789012345 not counted', false],
      ['0 x', false],
    ]);
  });
});

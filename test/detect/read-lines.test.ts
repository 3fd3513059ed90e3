import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { forEachLine, forEachLineIn } from '../../src/detect/read-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'rampart-lines-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function lines(content: Buffer | string): Promise<string[]> {
  const p = join(dir, `f-${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, content);
  const out: string[] = [];
  await forEachLine(p, (l) => out.push(l));
  return out;
}

describe('forEachLine', () => {
  it('splits on \\n, drops \\r, keeps a last line without newline', async () => {
    expect(await lines('a\r\nb\n\nc')).toEqual(['a', 'b', '', 'c']);
  });

  it('invalid UTF-8 becomes replacement characters and never joins or splits lines', async () => {
    const buf = Buffer.concat([
      Buffer.from('ok 1\n'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x0a]),
      Buffer.from('ok 2\n'),
    ]);
    expect(await lines(buf)).toEqual(['ok 1', '\ufffd\ufffd\ufffd', 'ok 2']);
  });

  it('a multi-byte character split across read chunks survives', async () => {
    // Reads come in power-of-two chunks of at most 1 MiB: put a 3-byte character across 1 MiB.
    const pad = 'x'.repeat((1 << 20) - 1);
    expect(await lines(`${pad}€\nnext\n`)).toEqual([`${pad}€`, 'next']);
  });

  it('ASCII chunks, then a chunk with UTF-8 and bad bytes, then ASCII again: all decoded alike', async () => {
    const ascii = 'y'.repeat(300_000);
    const buf = Buffer.concat([
      Buffer.from(`${ascii}\ncafé \u20ac`),
      Buffer.from([0xff, 0x0a]),
      Buffer.from(`${ascii}\nend é\n`),
    ]);
    expect(await lines(buf)).toEqual([ascii, 'café €\ufffd', ascii, 'end é']);
  });

  it('a line too long to hold is cut and its rest dropped, never read as a new line', async () => {
    const forged = 'Nov 21 13:15:30 web1 sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2';
    const out = await lines(`first\n${'A'.repeat(6 << 20)}${forged}\nlast\n`);
    expect(out[0]).toBe('first');
    expect(out[out.length - 1]).toBe('last');
    expect(out).not.toContain(forged);
    expect(out.length).toBe(3);
  });

  it('with literals, lines holding none are counted as skipped, never decoded (across reads too)', async () => {
    const p = join(dir, 'filtered.log');
    // Enough lines to span many 64 KiB reads, a long line over the bound, a last line without \n.
    const body = Array.from({ length: 20_000 }, (_, i) => (i % 3 === 0 ? `x sshd ${i}` : `cron ${i}`));
    writeFileSync(p, `${body.join('\n')}\n${'z'.repeat(300)}\ntail sshd`);
    const got: string[] = [];
    let skipped = 0;
    await forEachLine(p, (l) => got.push(l), {
      literals: ['sshd'],
      onSkip: () => skipped++,
      deliverOver: 200,
    });
    expect(got).toEqual([...body.filter((l) => l.includes('sshd')), 'z'.repeat(300), 'tail sshd']);
    expect(skipped).toBe(body.length - (got.length - 2));
  });

  it('each delivered line carries the bits of the filter literals it holds', async () => {
    const p = join(dir, 'masks.log');
    writeFileSync(p, 'a sshd b\nSASL and sshd\nnone\ncafé SASL\n');
    const got: Array<[string, number]> = [];
    await forEachLine(p, (l, m) => got.push([l, m]), {
      literals: ['sshd', 'SASL'],
      onSkip: () => {},
      deliverOver: 100,
    });
    expect(got).toEqual([
      ['a sshd b', 1],
      ['SASL and sshd', 3],
      ['café SASL', 2],
    ]);
  });

  it('a literal searched by its rarest piece: near misses, line ends and long literals agree with includes', async () => {
    // `q` is the rarest character of `dovecq(x)` below, so the search lands on every `q` and
    // must check the whole literal around it: near misses before and after, the literal cut by
    // a newline, and a literal longer than the 6-character piece searched.
    const literals = ['dovecqt', 'a"b', 'zzzzzzzzqzzzz', 'sshd'];
    const pick = (i: number): string =>
      [
        `x dovecqt ${i}`,
        `x ovecqt dovecq ${i}`,
        `x a"c a"b`,
        `zzzzzzzzqzzz ${i}`,
        `y zzzzzzzzqzzzz sshd`,
        `sshd dovec`,
        `qt and a"`,
        `none ${i}`,
      ][i % 8]!;
    const body = Array.from({ length: 12_000 }, (_, i) => pick(i * 7 + (i >> 3)));
    const p = join(dir, 'pieces.log');
    writeFileSync(p, `${body.join('\n')}\n`);
    const got: Array<[string, number]> = [];
    await forEachLine(p, (l, m) => got.push([l, m]), { literals, onSkip: () => {}, deliverOver: 1000 });
    const want = body
      .map((l): [string, number] => [
        l,
        literals.reduce((m, lit, k) => (l.includes(lit) ? m | (1 << k) : m), 0),
      ])
      .filter(([, m]) => m !== 0);
    expect(got).toEqual(want);
  });

  it('a missing file is E_SOURCE naming it', async () => {
    await expect(forEachLine(join(dir, 'missing.log'), () => {})).rejects.toThrow(
      /cannot read .*missing\.log: no such file \(ENOENT\)/,
    );
  });
});

describe('forEachLineIn - pause', () => {
  it('a promise from `pause` holds the next read until it settles', async () => {
    // 5,000 lines of 40 bytes: four 64 KiB reads. While a pause is pending, no line arrives.
    const p = join(dir, 'paused');
    writeFileSync(
      p,
      Array.from({ length: 5000 }, (_, i) => `line ${String(i).padStart(34, '0')}`).join('\n'),
    );
    let held = false;
    let early = 0;
    let pauses = 0;
    let seen = 0;
    await forEachLineIn(
      p,
      () => {
        seen++;
        if (held) early++;
      },
      undefined,
      () => {
        pauses++;
        held = true;
        return new Promise<void>((r) =>
          setTimeout(() => {
            held = false;
            r();
          }, 5),
        );
      },
    );
    expect(seen).toBe(5000);
    expect(pauses).toBeGreaterThanOrEqual(3);
    expect(early).toBe(0);
  });
});

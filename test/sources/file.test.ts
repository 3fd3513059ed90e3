import {
  appendFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource } from '../../src/sources/file.js';
import { MemoryPositions, PositionFile } from '../../src/sources/position-file.js';
import { collector, numberProblems, sleep, tempDir, waitFor } from './helpers.js';

describe('file source', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const sources: FileSource[] = [];
  const open = (o: ConstructorParameters<typeof FileSource>[0]) => {
    const s = new FileSource({ pollMs: 100, rotateGraceMs: 300, ...o });
    sources.push(s);
    return s;
  };
  beforeEach(async () => {
    tmp = await tempDir('file');
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await tmp.remove();
  });

  it('an existing file starts at its end; fromStart reads it all; appended lines arrive with source = path', async () => {
    const log = tmp.path('a.log');
    writeFileSync(log, 'old 1\nold 2\n');
    const c1 = collector();
    const c2 = collector();
    await open({ paths: [log] }).start(c1.push);
    await open({ paths: [log], fromStart: true }).start(c2.push);
    appendFileSync(log, 'new 1\n');
    await waitFor(() => c1.lines.length === 1 && c2.lines.length === 3, 'appended line');
    expect(c1.lines).toEqual([{ text: 'new 1', source: log }]);
    expect(c2.texts()).toEqual(['old 1', 'old 2', 'new 1']);
  });

  it('a partial last line is held until its newline; CRLF and invalid UTF-8 are handled', async () => {
    const log = tmp.path('p.log');
    writeFileSync(log, '');
    const c = collector();
    await open({ paths: [log] }).start(c.push);
    appendFileSync(log, 'half');
    await sleep(400);
    expect(c.lines).toEqual([]);
    appendFileSync(log, ' done\r\n');
    appendFileSync(log, Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0xc3, 0x0a]));
    await waitFor(() => c.lines.length === 2, 'two lines');
    expect(c.texts()).toEqual(['half done', 'bad\ufffd\ufffd\ufffd']);
  });

  it('a huge line is cut at the cap, counted, and the next line is intact', async () => {
    const log = tmp.path('h.log');
    writeFileSync(log, '');
    const c = collector();
    const src = open({ paths: [log], maxLineBytes: 1000 });
    await src.start(c.push);
    appendFileSync(log, `${'x'.repeat(5000)}\nafter\n`);
    await waitFor(() => c.lines.length === 2, 'cut line and next');
    expect(c.lines[0]!.text).toBe('x'.repeat(1000));
    expect(c.lines[1]!.text).toBe('after');
    expect(src.truncatedLines).toBe(1);
  });

  it('waits for a file that does not exist yet and reads it from the start when it appears', async () => {
    const log = tmp.path('later/x.log');
    const c = collector();
    await open({ paths: [log] }).start(c.push);
    await sleep(200);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(tmp.path('later'));
    writeFileSync(log, 'first\nsecond\n');
    await waitFor(() => c.lines.length === 2, 'lines of the new file');
    expect(c.texts()).toEqual(['first', 'second']);
  });

  it('a glob picks up files created later (from their start) and ignores non-matching names', async () => {
    writeFileSync(tmp.path('one.log'), 'skip me\n');
    const c = collector();
    await open({ paths: [tmp.path('*.log*')] }).start(c.push);
    writeFileSync(tmp.path('two.log'), 'two a\n');
    writeFileSync(tmp.path('two.txt'), 'not matched\n');
    // Rotated copies never match a glob (here "*" would otherwise take them).
    writeFileSync(tmp.path('one.log.1'), 'rotated\n');
    writeFileSync(tmp.path('one.log-20261121'), 'rotated\n');
    writeFileSync(tmp.path('one.log.2.gz'), 'rotated\n');
    appendFileSync(tmp.path('one.log'), 'one a\n');
    await waitFor(() => c.lines.length === 2, 'lines from both files');
    await sleep(300);
    expect(c.texts().sort()).toEqual(['one a', 'two a']);
    expect(c.lines.find((l) => l.text === 'two a')!.source).toBe(tmp.path('two.log'));
  });

  it('rename rotation: the old file is finished (even lines written after the rename), then the new one', async () => {
    const log = tmp.path('r.log');
    writeFileSync(log, '');
    const c = collector();
    await open({ paths: [log] }).start(c.push);
    appendFileSync(log, 'n 1\nn 2\n');
    renameSync(log, `${log}.1`);
    appendFileSync(`${log}.1`, 'n 3\n'); // a writer that has not reopened yet
    writeFileSync(log, 'n 4\n');
    await waitFor(() => c.lines.length >= 4, 'four lines');
    appendFileSync(`${log}.1`, 'n 5\n');
    appendFileSync(log, 'n 6\n');
    await waitFor(() => c.lines.length >= 6, 'six lines');
    await sleep(500);
    expect(numberProblems(c.texts(), 'n', 6)).toEqual([]);
  });

  it('a deleted file is closed after the grace time; renamed away and back, it is not read twice', async () => {
    const log = tmp.path('d.log');
    writeFileSync(log, 'n 1\n');
    const c = collector();
    await open({ paths: [log], fromStart: true }).start(c.push);
    await waitFor(() => c.lines.length === 1, 'first line');
    renameSync(log, `${log}.tmp`);
    appendFileSync(`${log}.tmp`, 'n 2\n');
    await waitFor(() => c.lines.length === 2, 'a line written while renamed away');
    renameSync(`${log}.tmp`, log);
    appendFileSync(log, 'n 3\n');
    await waitFor(() => c.lines.length === 3, 'a line after the rename back');
    await sleep(300);
    expect(numberProblems(c.texts(), 'n', 3)).toEqual([]);
    rmSync(log);
    await sleep(800); // rotateGraceMs is 300 here
    const fds = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(fds.filter((f) => f.startsWith(log))).toEqual([]);
  });

  it('truncation restarts at 0; a rewrite with a different head is noticed even when the file grew', async () => {
    const log = tmp.path('t.log');
    writeFileSync(log, 'aaaa 1\n');
    const c = collector();
    await open({ paths: [log], fromStart: true }).start(c.push);
    await waitFor(() => c.lines.length === 1, 'first line');
    truncateSync(log, 0);
    appendFileSync(log, 'b 2\n');
    await waitFor(() => c.lines.length === 2, 'line after truncate');
    // Replaced in place by longer content between two polls: size alone would miss this.
    writeFileSync(log, 'cccccccccccccccccc 3\n');
    await waitFor(() => c.lines.length === 3, 'line after rewrite');
    expect(c.texts()).toEqual(['aaaa 1', 'b 2', 'cccccccccccccccccc 3']);
  });

  it('restart resumes from the stored position: nothing lost, nothing repeated, a partial line re-read', async () => {
    const log = tmp.path('s.log');
    const posFile = tmp.path('state/positions.json');
    writeFileSync(log, 'n 1\n');
    const pos1 = new PositionFile(posFile);
    const c = collector();
    const s1 = open({ paths: [log], fromStart: true, positions: pos1 });
    await s1.start(c.push);
    await waitFor(() => c.lines.length === 1, 'first line');
    appendFileSync(log, 'n 2\nn ');
    await waitFor(() => c.lines.length === 2, 'second line');
    await s1.stop();
    pos1.close();
    appendFileSync(log, '3\nn 4\n');
    const s2 = open({ paths: [log], positions: new PositionFile(posFile) });
    await s2.start(c.push);
    await waitFor(() => c.lines.length === 4, 'lines written while stopped');
    expect(numberProblems(c.texts(), 'n', 4)).toEqual([]);
  });

  it('restart after a rotation while stopped finishes the rotated file from the stored offset', async () => {
    const log = tmp.path('w.log');
    writeFileSync(log, 'n 1\n');
    const pos = new MemoryPositions();
    const c = collector();
    const s1 = open({ paths: [log], fromStart: true, positions: pos });
    await s1.start(c.push);
    await waitFor(() => c.lines.length === 1, 'first line');
    await s1.stop();
    appendFileSync(log, 'n 2\n');
    renameSync(log, `${log}.1`);
    writeFileSync(log, 'n 3\n');
    await open({ paths: [log], positions: pos }).start(c.push);
    await waitFor(() => c.lines.length === 3, 'three lines');
    expect(c.texts()).toEqual(['n 1', 'n 2', 'n 3']);
  });

  it('position file: atomic JSON, corrupt content is a clear error', async () => {
    const f = tmp.path('p.json');
    const p = new PositionFile(f, 0);
    p.set('k', 'v');
    expect(new PositionFile(f).get('k')).toBe('v');
    writeFileSync(f, '{nope');
    expect(() => new PositionFile(f)).toThrow(/p\.json: position file is not valid JSON/);
  });
});

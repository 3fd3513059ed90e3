import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JournaldSource, journalEntryToLine } from '../../src/sources/journald.js';
import { MemoryPositions } from '../../src/sources/position-file.js';
import { traditionalTime } from '../../src/sources/syslog-parse.js';
import { requirements } from '../helpers/requirements.js';
import { collector, sleep, tempDir, waitFor } from './helpers.js';

const JOURNAL_REMOTE = '/lib/systemd/systemd-journal-remote';
const req = requirements('journald source', ['cmd:journalctl', `file:${JOURNAL_REMOTE}`]);

const BOOT = '0123456789abcdef0123456789abcdef';
let mono = 1;

/** One entry in journald's export format; a Buffer value is written as a binary field. */
function exportEntry(fields: Record<string, string | Buffer>, usec: number): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`__REALTIME_TIMESTAMP=${usec}\n__MONOTONIC_TIMESTAMP=${mono++}\n_BOOT_ID=${BOOT}\n`),
  ];
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') parts.push(Buffer.from(`${k}=${v}\n`));
    else {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(v.length));
      parts.push(Buffer.from(`${k}\n`), len, v, Buffer.from('\n'));
    }
  }
  parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** Appends entries to a journal file with Debian's systemd-journal-remote (the real writer). */
function writeJournal(file: string, entries: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(JOURNAL_REMOTE, [`--output=${file}`, '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`journal-remote: ${err}`))));
    p.stdin.end(Buffer.concat(entries));
  });
}

const sshd = (n: number, extra: Record<string, string | Buffer> = {}) =>
  exportEntry(
    {
      MESSAGE: `Failed password for root from 192.0.2.${n} port 22 ssh2`,
      SYSLOG_IDENTIFIER: 'sshd',
      _PID: '4242',
      _HOSTNAME: 'web1',
      _SYSTEMD_UNIT: 'ssh.service',
      ...extra,
    },
    1_700_000_000_000_000 + n * 1_000_000,
  );

describe.skipIf(req.skip)('journald source', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const sources: JournaldSource[] = [];
  beforeEach(async () => {
    tmp = await tempDir('journal');
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await tmp.remove();
  });

  it('reads a journal file written by systemd-journal-remote, follows appends, resumes by cursor', async () => {
    const file = tmp.path('test.journal');
    await writeJournal(file, [
      sshd(1),
      exportEntry(
        { MESSAGE: 'cron noise', SYSLOG_IDENTIFIER: 'CRON', _PID: '7', _HOSTNAME: 'web1' },
        1_700_000_001_500_000,
      ),
      // A binary MESSAGE (invalid UTF-8 and a newline): journalctl prints it as a byte array.
      sshd(2, { MESSAGE: Buffer.from([0x62, 0x61, 0x64, 0xff, 0x0a, 0x78]) }),
    ]);
    const pos = new MemoryPositions();
    const c = collector();
    const s1 = new JournaldSource({ files: [file], fromStart: true, positions: pos });
    sources.push(s1);
    await s1.start(c.push);
    await waitFor(() => c.lines.length === 3, 'three existing entries');
    const t1 = 1_700_000_001_000;
    expect(c.lines[0]).toEqual({
      text: `${traditionalTime(t1)} web1 sshd[4242]: Failed password for root from 192.0.2.1 port 22 ssh2`,
      source: 'journald',
      time: t1,
    });
    expect(c.lines[1]!.text).toMatch(/ web1 CRON\[7\]: cron noise$/);
    expect(c.lines[2]!.text).toMatch(/ web1 sshd\[4242\]: bad\ufffd#012x$/);

    await writeJournal(file, [sshd(3)]);
    await waitFor(() => c.lines.length === 4, 'an appended entry while following');
    expect(c.lines[3]!.text).toMatch(/from 192\.0\.2\.3 /);
    await s1.stop();

    await writeJournal(file, [sshd(4), sshd(5)]);
    const c2 = collector();
    const s2 = new JournaldSource({ files: [file], positions: pos });
    sources.push(s2);
    await s2.start(c2.push);
    await waitFor(() => c2.lines.length === 2, 'entries written while stopped');
    await sleep(300);
    expect(c2.texts().map((t) => /192\.0\.2\.(\d+)/.exec(t)![1])).toEqual(['4', '5']);
  });

  it('reads a journal directory (--directory) from the start', async () => {
    await writeJournal(tmp.path('d.journal'), [sshd(7)]);
    const c = collector();
    // (labelled as a fail2ban jail's journal reader is: its lines carry the label as source)
    const s = new JournaldSource({ directory: tmp.dir, fromStart: true, label: 'journald:_COMM=sshd' });
    sources.push(s);
    await s.start(c.push);
    await waitFor(() => c.lines.length === 1, 'the entry in the directory');
    expect(c.lines[0]!.text).toMatch(/192\.0\.2\.7 /);
    expect(c.lines[0]!.source).toBe('journald:_COMM=sshd');
  });

  it('without a cursor starts at the end; units and matches filter', async () => {
    const file = tmp.path('f.journal');
    await writeJournal(file, [sshd(1)]);
    const c = collector();
    const unit = new JournaldSource({ files: [file], units: ['ssh.service'] });
    const ident = new JournaldSource({ files: [file], matches: ['SYSLOG_IDENTIFIER=CRON'] });
    sources.push(unit, ident);
    await unit.start((l) => c.push({ ...l, source: 'unit' }));
    await ident.start((l) => c.push({ ...l, source: 'ident' }));
    await writeJournal(file, [
      sshd(2),
      exportEntry(
        { MESSAGE: 'job ran', SYSLOG_IDENTIFIER: 'CRON', _HOSTNAME: 'web1' },
        1_700_000_100_000_000,
      ),
    ]);
    await waitFor(() => c.lines.length === 2, 'one entry for each filter');
    await sleep(300);
    expect(c.lines.find((l) => l.source === 'unit')!.text).toMatch(/192\.0\.2\.2/);
    expect(c.lines.find((l) => l.source === 'ident')!.text).toMatch(/ web1 CRON: job ran$/);
    expect(c.lines).toHaveLength(2);
  });

  it('a stored cursor journalctl refuses is dropped: the source starts as if new', async () => {
    const file = tmp.path('c.journal');
    await writeJournal(file, [sshd(1)]);
    const pos = new MemoryPositions();
    pos.set(`journald:${file}`, 'not-a-cursor');
    const c = collector();
    const s = new JournaldSource({ files: [file], positions: pos });
    sources.push(s);
    await s.start(c.push);
    await writeJournal(file, [sshd(2)]);
    await waitFor(() => c.lines.length === 1, 'the new entry');
    expect(c.lines[0]!.text).toMatch(/192\.0\.2\.2 /);
    expect(pos.get(`journald:${file}`)).toMatch(/^s=/);
  });

  it('a journal that cannot be read is one clear error', async () => {
    const s = new JournaldSource({ directory: tmp.path('nope'), journalctl: '/nonexistent/journalctl' });
    await expect(s.start(() => {})).rejects.toThrow(/journald: journalctl failed: cannot run journalctl/);
  });
});

describe('journald entry mapping', () => {
  it('maps byte-array and multi-valued fields, falls back to _COMM, skips entries without MESSAGE', () => {
    expect(
      journalEntryToLine({ MESSAGE: [104, 105], _COMM: 'su', _HOSTNAME: 'h b', __REALTIME_TIMESTAMP: 'x' }),
    ).toEqual({ text: 'hb su: hi', source: 'journald', time: undefined });
    expect(
      journalEntryToLine({ MESSAGE: ['one', 'two'], SYSLOG_IDENTIFIER: 'a', SYSLOG_PID: '3' })!.text,
    ).toBe('localhost a[3]: one');
    expect(journalEntryToLine({ SYSLOG_IDENTIFIER: 'a' })).toBeUndefined();
    expect(journalEntryToLine({ MESSAGE: null })).toBeUndefined();
  });
});

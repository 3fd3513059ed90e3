import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { journalEntryToLine } from '../../src/sources/journald.js';
import { decodeUtf8, LineSplitter } from '../../src/sources/line-splitter.js';
import { SyslogFrameDecoder } from '../../src/sources/syslog-framing.js';
import { escapeControls, parseSyslog } from '../../src/sources/syslog-parse.js';
import { family, textFrom, timeout } from './harness.js';

// Log sources: syslog framing (octet counting and LF), RFC 3164/5424 parsing, the file line
// splitter and journald's JSON records. Every byte here comes from the network or a log file.
const f = family('sources');

/** Cuts `b` into chunks at random points: a stream arrives however the kernel pleases. */
function chunked(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (b.length === 0 ? 0 : c % b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  out.push(b.subarray(prev));
  return out;
}

const cuts = fc.array(fc.nat(), { maxLength: 12 });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));

/** One syslog message framed either way, with what the decoder must hand on for it. */
const framed = (max: number) =>
  fc.oneof(
    // Octet counting: any bytes at all inside the frame.
    fc
      .uint8Array({ minLength: 1, maxLength: max * 2 })
      .map((u) => {
        const m = Buffer.from(u);
        return {
          wire: Buffer.concat([Buffer.from(`${m.length} `), m]),
          frame: m.subarray(0, max),
          cut: m.length > max,
        };
      }),
    // Non-transparent: a line starting like a syslog message, no LF inside.
    fc
      .tuple(fc.integer({ min: 0, max: 191 }), fc.uint8Array({ maxLength: max * 2 }))
      .map(([pri, u]) => {
        const m = Buffer.concat([Buffer.from(`<${pri}>`), Buffer.from(u.filter((x) => x !== 0x0a))]);
        return {
          wire: Buffer.concat([m, Buffer.from('\n')]),
          frame: m.subarray(0, max),
          cut: m.length > max,
        };
      }),
  );

const tsText = fc
  .date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
// RFC 5424 header fields: printable US-ASCII without space, or `-` (NILVALUE).
const field = fc.oneof(fc.constant('-'), fc.stringMatching(/^[!-~]{1,12}$/));

describe('fuzz: log sources', () => {
  it(
    'syslog framing: any mix of octet-counted and LF frames in any chunking decodes to the frames sent',
    () => {
      f.prop(
        'framing-round-trip',
        fc.tuple(fc.array(framed(48), { maxLength: 8 }), cuts),
        ([msgs, at]) => {
          const got: Array<{ frame: Buffer; cut: boolean }> = [];
          const dec = new SyslogFrameDecoder(48, (frame, cut) =>
            got.push({ frame: Buffer.from(frame), cut }),
          );
          for (const c of chunked(Buffer.concat(msgs.map((m) => m.wire)), at)) dec.push(c);
          dec.end();
          expect(got).toEqual(msgs.map((m) => ({ frame: m.frame, cut: m.cut })));
        },
        { runs: 20_000 },
      );
    },
    timeout(10),
  );

  it(
    'syslog framing: hostile bytes never throw, frames stay under the cap, the buffer stays bounded',
    () => {
      const stream = fc.array(
        fc.oneof(
          bytes(200),
          textFrom('0123456789 \n\r\0<>', 40).map((s) => Buffer.from(s, 'latin1')),
        ),
        { maxLength: 10 },
      );
      f.prop(
        'framing-hostile',
        stream,
        (chunks) => {
          const dec = new SyslogFrameDecoder(32, (frame) => {
            expect(frame.length).toBeLessThanOrEqual(32);
          });
          for (const c of chunks) {
            dec.push(c);
            // Held bytes: at most one frame and an 11-byte length header.
            expect((Reflect.get(dec, 'buf') as Buffer).length).toBeLessThanOrEqual(32 + 12);
          }
          dec.end();
        },
        { runs: 15_000 },
      );
    },
    timeout(10),
  );

  it(
    'syslog parsing is total: one line out, no control character that could forge a second line',
    () => {
      const raw = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        textFrom('<>0123456789 -[]="\\:TZ.+abc\n\r\0\x1b', 120),
        fc
          .tuple(fc.integer({ min: 0, max: 999 }), textFrom('0123456789 -[]="\\:TZ.+abc', 120))
          .map(([p, s]) => `<${p}>1 ${s}`),
      );
      f.prop(
        'parse-total',
        raw,
        (s) => {
          const m = parseSyslog(s, 'fallback\nhost');
          expect(m.text).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
          if (m.time !== undefined) expect(Number.isFinite(m.time)).toBe(true);
          if (m.facility !== undefined) expect(m.facility).toBeLessThanOrEqual(23);
          if (m.severity !== undefined) expect(m.severity).toBeLessThanOrEqual(7);
        },
        { runs: 30_000 },
      );
    },
    timeout(10),
  );

  it(
    'syslog parsing: a well-formed RFC 5424 message keeps its time, host, tag and message',
    () => {
      const msg = fc
        .tuple(
          fc.integer({ min: 0, max: 191 }),
          tsText,
          field,
          field,
          field,
          field,
          fc.constantFrom('-', '[x@1 a="b\\"]c"]', '[a][b k="v"]'),
          fc.string({ maxLength: 80 }),
        )
        .map(([pri, ts, host, app, pid, msgid, sd, text]) => ({
          wire: `<${pri}>1 ${ts} ${host} ${app} ${pid} ${msgid} ${sd} ${text}`,
          ts,
          host,
          app,
          pid,
          text,
        }));
      f.prop(
        'rfc5424-fields',
        msg,
        (m) => {
          const p = parseSyslog(m.wire, 'fb');
          expect(p.format).toBe('rfc5424');
          expect(p.time).toBe(Date.parse(m.ts));
          const tag = m.app === '-' ? '' : m.pid === '-' ? `${m.app}: ` : `${m.app}[${m.pid}]: `;
          const body = m.text.startsWith('\uFEFF') ? m.text.slice(1) : m.text;
          const host = m.host === '-' ? 'fb' : m.host;
          expect(p.text.endsWith(escapeControls(` ${host} ${tag}${body}`))).toBe(true);
        },
        { runs: 10_000 },
      );
    },
    timeout(10),
  );

  it(
    'line splitter: any chunking gives the lines of the whole input, long ones cut, offsets at line starts',
    () => {
      const input = fc.array(
        fc.oneof(
          bytes(40),
          fc.constantFrom('\n', '\r\n', '\n\n').map((s) => Buffer.from(s)),
        ),
        { maxLength: 12 },
      );
      f.prop(
        'splitter-model',
        fc.tuple(input, cuts),
        ([parts, at]) => {
          const max = 24;
          const all = Buffer.concat(parts);
          const got: Array<[string, boolean]> = [];
          const emit = (t: string, cut: boolean) => got.push([t, cut]);
          const sp = new LineSplitter(max);
          let pushed = 0;
          for (const c of chunked(all, at)) {
            sp.push(c, emit);
            pushed += c.length;
            // The resume offset is always the start of the unfinished line.
            expect(pushed - sp.pendingBytes).toBe(all.subarray(0, pushed).lastIndexOf(0x0a) + 1);
          }
          sp.flush(emit);
          const want: Array<[string, boolean]> = [];
          const pieces = splitBytes(all);
          pieces.forEach((line, i) => {
            const last = i === pieces.length - 1;
            if (line.length > max) want.push([decodeLine(line.subarray(0, max)), true]);
            else if (!last) want.push([decodeLine(line), false]);
            else if (line.length > 0) want.push([decodeLine(line), false]);
          });
          expect(got).toEqual(want);
        },
        { runs: 20_000 },
      );
    },
    timeout(10),
  );

  it(
    'journald: any record of the JSON shape journalctl prints maps to one escaped line or nothing',
    () => {
      const value = fc.oneof(
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
        fc.constant(null),
        fc.array(
          fc.oneof(
            fc.string({ maxLength: 10 }),
            fc.array(fc.integer({ min: 0, max: 255 })),
            fc.constant(null),
          ),
          {
            maxLength: 3,
          },
        ),
      );
      const record = fc.record(
        {
          MESSAGE: value,
          __REALTIME_TIMESTAMP: fc.oneof(value, fc.bigInt({ min: 0n, max: 10n ** 20n }).map(String)),
          _HOSTNAME: value,
          SYSLOG_IDENTIFIER: value,
          _COMM: value,
          _PID: value,
          SYSLOG_PID: value,
          __CURSOR: value,
        },
        { requiredKeys: [] },
      );
      f.prop(
        'journald-record',
        record,
        (r) => {
          // The source parses journalctl's text: go through JSON as it does.
          const line = journalEntryToLine(JSON.parse(JSON.stringify(r)));
          if (r.MESSAGE === undefined || r.MESSAGE === null) expect(line).toBeUndefined();
          if (!line) return;
          expect(line.text).not.toMatch(/[\x00-\x08\x0a-\x1f\x7f]/);
          if (line.time !== undefined) expect(Number.isFinite(line.time)).toBe(true);
          expect(line.source).toBe('journald');
        },
        { runs: 15_000 },
      );
    },
    timeout(10),
  );
});

function splitBytes(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, start)) {
    out.push(b.subarray(start, i));
    start = i + 1;
  }
  out.push(b.subarray(start));
  return out;
}

function decodeLine(b: Buffer): string {
  return decodeUtf8(b.length > 0 && b[b.length - 1] === 0x0d ? b.subarray(0, b.length - 1) : b);
}

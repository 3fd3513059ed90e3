import { describe, expect, it } from 'vitest';
import { LogTimeParser } from '../../src/detect/log-time.js';

const local = (y: number, mo: number, d: number, h: number, mi: number, s: number) =>
  new Date(y, mo - 1, d, h, mi, s).getTime();

function parse(text: string, now = local(2026, 11, 21, 14, 0, 0)) {
  const p = new LogTimeParser(() => now);
  const ms = p.parse(text);
  return { ms, rest: text.slice(p.restStart) };
}

describe('log time', () => {
  it('RFC 3164: local time, year from the clock, stamp stripped', () => {
    expect(parse('Nov 21 13:15:30 web1 sshd[1]: hi')).toEqual({
      ms: local(2026, 11, 21, 13, 15, 30),
      rest: 'web1 sshd[1]: hi',
    });
    expect(parse('Nov  2 03:04:05 web1 x').ms).toBe(local(2026, 11, 2, 3, 4, 5));
  });

  it('RFC 3164 across New Year: a December line read in January is last year', () => {
    const january = local(2027, 1, 2, 0, 10, 0);
    expect(parse('Dec 31 23:59:59 web1 x', january).ms).toBe(local(2026, 12, 31, 23, 59, 59));
    expect(parse('Jan  2 00:05:00 web1 x', january).ms).toBe(local(2027, 1, 2, 0, 5, 0));
  });

  it('RFC 5424 / ISO 8601 with fraction and offset, Z, or no zone (local)', () => {
    expect(parse('2026-11-21T13:15:30.123456+02:00 web1 x')).toEqual({
      ms: Date.UTC(2026, 10, 21, 11, 15, 30, 123),
      rest: 'web1 x',
    });
    expect(parse('2026-11-21T13:15:30Z web1 x').ms).toBe(Date.UTC(2026, 10, 21, 13, 15, 30));
    // journalctl -o short-iso writes the offset without a colon
    expect(parse('2026-11-21T13:15:30+0100 web1 sshd[1]: x')).toEqual({
      ms: Date.UTC(2026, 10, 21, 12, 15, 30),
      rest: 'web1 sshd[1]: x',
    });
    expect(parse('2026-11-21T13:15:30 web1 x').ms).toBe(local(2026, 11, 21, 13, 15, 30));
    expect(parse('<34>1 2026-11-21T13:15:30.5-01:30 host app - - - msg')).toEqual({
      ms: Date.UTC(2026, 10, 21, 14, 45, 30, 500),
      rest: 'host app - - - msg',
    });
  });

  it("fail2ban's 2026-11-21 13:15:30,123 and nginx's 2026/11/21 13:15:30", () => {
    expect(parse('2026-11-21 13:15:30,123 fail2ban.actions [1]: NOTICE x')).toEqual({
      ms: local(2026, 11, 21, 13, 15, 30) + 123,
      rest: 'fail2ban.actions [1]: NOTICE x',
    });
    expect(parse('2026/11/21 13:15:30 [error] 1#1: x').rest).toBe('[error] 1#1: x');
  });

  it('access logs: the [dd/Mon/yyyy:hh:mm:ss zone] stamp is read but left in the line', () => {
    const line = '192.0.2.1 - - [21/Nov/2026:13:15:30 -0130] "GET / HTTP/1.1" 404 1 "-" "x"';
    expect(parse(line)).toEqual({ ms: Date.UTC(2026, 10, 21, 14, 45, 30), rest: line });
    expect(parse('2001:db8::1 - bob [01/Jan/2027:00:00:00 +0000] "GET /"').ms).toBe(Date.UTC(2027, 0, 1));
    expect(parse('192.0.2.1 - - [21/Foo/2026:13:15:30 +0000] "GET /"').ms).toBeNaN();
  });

  it('no timestamp, or garbage that looks like one: NaN and nothing stripped', () => {
    for (const t of [
      'sshd[1]: x',
      'Foo 21 13:15:30 x',
      'Nov 21 25:15:30 x',
      '2026-13-21T00:00:00Z x',
      '',
      '\u0000',
    ]) {
      const r = parse(t);
      expect(r.ms).toBeNaN();
      expect(r.rest).toBe(t);
    }
  });

  it('a line read inside a larger text gives what it gives alone, whatever follows it', () => {
    const now = local(2026, 11, 21, 14, 0, 0);
    // Each line ends where a stamp would, had the next line been read as its continuation.
    const lines = [
      'Nov 21 13:15:30 web1 sshd[1]: a',
      'Nov 21 13:15:30 web1 sshd[1]: b',
      'Nov 21 13:15:31',
      ' web1 x',
      '<13',
      '>Nov 21 13:15:30 x',
      '<13>1',
      ' 2026-11-21T13:15:30Z x',
      '2026-11-21T13:15:30+',
      '01:00 x',
      '2026-11-21T13:15:30+01',
      ':00 x',
      '2026-11-21T13:15:30+01',
      '00 x',
      '2026-11-21T13:15:30',
      '+01:00 x',
      '2026-11-21T13:15',
      ':30 x',
      '2026-11-21T13:15:30.',
      '5Z x',
      '2026-11-21 13:15:30',
      ' x',
      '192.0.2.1 - -',
      ' [21/Nov/2026:13:15:30 +0000] "GET /"',
      '192.0.2.1 - - [21/Nov/2026:13:15:30 +0000',
      '] "GET /"',
      `${'x'.repeat(79)}`,
      ' [21/Nov/2026:13:15:30 +0000] "GET /"',
      '',
      'Dec  1 00:00:00 x',
    ];
    // Joined without a separator too: reading past `end` would then see what completes a stamp.
    for (const sep of ['\n', '']) {
      const text = lines.join(sep);
      const alone = new LogTimeParser(() => now);
      const inside = new LogTimeParser(() => now);
      let start = 0;
      for (const line of lines) {
        const end = start + line.length;
        const ms = alone.parse(line);
        expect(inside.parse(text, start, end), line).toEqual(ms);
        expect(text.slice(inside.restStart, end), line).toBe(line.slice(alone.restStart));
        start = end + sep.length;
      }
    }
  });

  it('the one-entry cache gives the same answer as a fresh parse', () => {
    const p = new LogTimeParser(() => local(2026, 11, 21, 14, 0, 0));
    const a = p.parse('Nov 21 13:15:30 a');
    const b = p.parse('Nov 21 13:15:30 bb');
    expect(b).toBe(a);
    expect(p.restStart).toBe(16);
    expect(p.parse('Nov 21 13:15:31 c')).toBe(a + 1000);
  });
});

import { describe, expect, it } from 'vitest';
import { parseSyslog, traditionalTime } from '../../src/sources/syslog-parse.js';

describe('syslog-parse', () => {
  it('rfc3164 - strips <PRI> and keeps the traditional line as is', () => {
    const m = parseSyslog(
      '<38>Nov 21 13:23:24 web1 sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2',
    );
    expect(m).toMatchObject({
      text: 'Nov 21 13:23:24 web1 sshd[123]: Failed password for root from 192.0.2.1 port 22 ssh2',
      facility: 4,
      severity: 6,
      format: 'rfc3164',
      time: undefined,
    });
  });

  it('rfc3164 - a zero-padded day becomes space-padded, a trailing newline is dropped', () => {
    expect(parseSyslog('<13>Nov 01 01:02:03 h t: x\n').text).toBe('Nov  1 01:02:03 h t: x');
  });

  it('rfc3164 - a sender without host (logger -u) gets the fallback host inserted', () => {
    expect(parseSyslog('<13>Nov 21 13:23:24 sshd[9]: hello', 'box').text).toBe(
      'Nov 21 13:23:24 box sshd[9]: hello',
    );
    expect(parseSyslog('<13>Nov 21 13:23:24 root: hello', 'box').text).toBe(
      'Nov 21 13:23:24 box root: hello',
    );
    expect(parseSyslog('<13>sshd: no time', 'box').text).toBe('box sshd: no time');
  });

  it('rfc3164 - an ISO timestamp (rsyslog high-precision forwarding) becomes traditional and sets time', () => {
    const m = parseSyslog('<13>2026-11-21T13:23:24.123456+00:00 web1 sshd[1]: hi');
    expect(m.time).toBe(Date.UTC(2026, 10, 21, 13, 23, 24, 123));
    expect(m.text).toBe(`${traditionalTime(m.time!)} web1 sshd[1]: hi`);
  });

  it('rfc5424 - converted to traditional form with time from its timestamp', () => {
    const m = parseSyslog(
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \uFEFFAn application event',
    );
    expect(m.format).toBe('rfc5424');
    expect(m.time).toBe(Date.UTC(2003, 9, 11, 22, 14, 15, 3));
    expect(m.text).toBe(
      `${traditionalTime(m.time!)} mymachine.example.com evntslog[77]: An application event`,
    );
    expect(m.facility).toBe(20);
    expect(m.severity).toBe(5);
  });

  it('rfc5424 - nil fields, escaped brackets in SD, offsets and no MSG', () => {
    const a = parseSyslog(
      '<34>1 2003-10-11T22:14:15+02:00 - su - - [a@1 x="q\\]uo\\"te]"][b@2] msg here',
      'fb',
    );
    expect(a.time).toBe(Date.UTC(2003, 9, 11, 20, 14, 15));
    expect(a.text.endsWith(' fb su: msg here')).toBe(true);
    const b = parseSyslog('<34>1 - host app 12 - -');
    expect(b).toMatchObject({ text: 'host app[12]: ', time: undefined, format: 'rfc5424' });
  });

  it('rfc5424 - a malformed header falls back to rfc3164 handling instead of failing', () => {
    const m = parseSyslog('<34>1 notatime host app - - - msg');
    expect(m.format).toBe('rfc3164');
    expect(m.text).toBe('1 notatime host app - - - msg');
    expect(parseSyslog('<34>1 2003-10-11T22:14:15Z host app - - [unterminated').format).toBe('rfc3164');
  });

  it('hostile - embedded newlines and control bytes are escaped, never forging a second line', () => {
    const m = parseSyslog(
      '<13>Nov 21 13:23:24 h sshd[1]: user x\nNov 21 13:23:25 h sshd[1]: Accepted from 10.0.0.1\x00\x1b',
    );
    expect(m.text).not.toContain('\n');
    expect(m.text).toContain('user x#012Nov 21');
    expect(m.text.endsWith('10.0.0.1#000#033')).toBe(true);
  });

  it('hostile - bad PRI, empty input, huge and random input never throw', () => {
    expect(parseSyslog('<999>x').text).toBe('<999>x');
    expect(parseSyslog('').text).toBe('');
    expect(parseSyslog('<').text).toBe('<');
    const big = `<13>1 ${'['.repeat(200_000)}`;
    expect(() => parseSyslog(big)).not.toThrow();
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      let s = '<13>1 ';
      for (let j = 0; j < 40; j++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        s += '[]" \\-<>1:Z0T'[seed % 14] ?? 'x';
      }
      expect(typeof parseSyslog(s).text).toBe('string');
    }
  });
});

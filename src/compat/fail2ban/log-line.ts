import { type Target, tryParseTarget } from '../../core/address.js';

/** One ban or unban that fail2ban wrote to its log. */
export interface Fail2banLogEvent {
  jail: string;
  action: 'ban' | 'unban';
  /** `Restore Ban`: fail2ban re-applied a ban from its database at start (0.10 and later). */
  restored: boolean;
  /** The action word exactly as written (`Ban`, `Unban`, `UnBan`, `Restore Ban`). */
  word: string;
  /** The banned thing as written: usually an address, but fail2ban ≥ 0.10 can ban any `<F-ID>`. */
  subject: string;
  /** The subject as an address, or null when it is not one. */
  target: Target | null;
  /** The line's own timestamp (local time, as fail2ban writes it), epoch ms; undefined if absent. */
  time?: number;
}

/*
 * The shapes fail2ban has written over the years (logger name `fail2ban.actions`):
 *   0.8:       2009-04-02 18:15:53,693 fail2ban.actions: WARNING [php-url-fopen] Ban 192.0.2.4
 *   0.9:       2014-08-01 10:00:00,123 fail2ban.actions        [1234]: WARNING [sshd] Ban 192.0.2.1
 *   0.10–1.x:  2026-12-03 10:16:16,342 fail2ban.actions        [13862]: NOTICE  [sshd] Ban 192.0.2.1
 *              ... NOTICE  [sshd] Restore Ban 2001:db8::5 / ... NOTICE  [sshd] Unban 192.0.2.1
 * With logtarget = SYSLOG the timestamp is the syslog daemon's and the rest is the same, so the
 * date is optional and anything may precede the logger name.
 */
const LINE =
  /(?:^|\s)fail2ban\.actions(?:\s*\[\d+\])?:\s+(?:WARNING|NOTICE|INFO)\s+\[([^\]\s]{1,100})\] (Restore Ban|Ban|Un[bB]an) (\S{1,255})\s*$/;
const STAMP = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:,(\d{3}))? /;
/** Only lines this long are looked at: fail2ban's own are < 200 bytes; a giant one is noise. */
const MAX_LINE = 1024;

/** Parses one fail2ban.log line; null for every line that is not a Ban/Unban/Restore Ban. */
export function parseFail2banLogLine(line: string): Fail2banLogEvent | null {
  if (line.length > MAX_LINE || !line.includes('fail2ban.actions')) return null;
  const m = LINE.exec(line);
  if (!m) return null;
  const word = m[2]!;
  const subject = m[3]!;
  const ev: Fail2banLogEvent = {
    jail: m[1]!,
    action: word.startsWith('Un') ? 'unban' : 'ban',
    restored: word === 'Restore Ban',
    word,
    subject,
    target: tryParseTarget(subject),
  };
  const t = STAMP.exec(line);
  if (t) {
    const [y, mo, d, h, mi, s, ms] = t.slice(1).map((x) => Number(x ?? 0));
    ev.time = new Date(y!, mo! - 1, d!, h!, mi!, s!, ms!).getTime();
  }
  return ev;
}

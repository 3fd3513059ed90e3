import type { Target } from '../core/address.js';
import type { DurationSeconds } from '../core/duration.js';

/** One line handed from a source to detection. */
export interface LogLine {
  /**
   * The line as text, possibly starting with a timestamp (RFC 3164, RFC 5424, ISO 8601 or
   * fail2ban's), which detection recognises and strips. Attacker-controlled: treat as hostile.
   */
  text: string;
  /** Where it came from (a path, `syslog:udp`, `journald`, `stdin`), for rules' `sources`. */
  source: string;
  /** The event time in epoch ms when the source knows it (journald, RFC 5424), else undefined. */
  time?: number;
}

/** What detection concludes about an address. */
export interface DetectEvent {
  type: 'ban' | 'unban';
  target: Target;
  rule: string;
  /** Event time (log time on replays, wall clock on live input), epoch ms. */
  at: number;
  /** Matches counted within the window when the ban fired (0 for an unban). */
  hits: number;
  /** Ban length after escalation; null = permanent; null for unbans. */
  duration: DurationSeconds;
  /** Logical set (or xt_recent target) the ban goes to. */
  set: string;
  reason: string;
}

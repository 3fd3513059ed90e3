import { resolve } from 'node:path';
import type { DurationSeconds } from '../../core/duration.js';
import type { DetectEvent, LogLine } from '../../detect/types.js';
import { DEFAULT_SET } from '../../firewall/staging.js';
import { parseFail2banLogLine } from './log-line.js';

export interface Fail2banLogOptions {
  /** The fail2ban.log files whose bans become the fleet's (lines from elsewhere are not read here). */
  paths: string[];
  /** How long the fleet bans: fail2ban's log does not say; default 600 s, fail2ban's own default. */
  bantime?: DurationSeconds;
  set?: string;
  /** Jails whose bans stay local; default `fail2bancluster` (fed by other servers' bans already). */
  ignoreJails?: string[];
}

/**
 * Turns an existing fail2ban's decisions into rampart detections, so a server joins the fleet
 * without touching its jails: `Ban` and `Restore Ban` become a ban reported to the hub (rule
 * `fail2ban/JAIL`), `Unban` lifts the local ban only (the fleet's decision stands until it
 * expires, as for any report). The agent's allowlist and policy apply as to any detection.
 * Returns null for lines from other sources.
 */
export function fail2banLogDetector(o: Fail2banLogOptions): (line: LogLine) => DetectEvent[] | null {
  const paths = new Set(o.paths.map((p) => resolve(p)));
  const ignore = new Set(o.ignoreJails ?? ['fail2bancluster']);
  return (line) => {
    if (!paths.has(line.source) && !paths.has(resolve(line.source))) return null;
    const ev = parseFail2banLogLine(line.text);
    if (!ev?.target || ignore.has(ev.jail)) return [];
    const common = {
      target: ev.target,
      rule: `fail2ban/${ev.jail}`,
      at: Date.now(),
      set: o.set ?? DEFAULT_SET,
    };
    if (ev.action === 'unban')
      return [{ ...common, type: 'unban', hits: 0, duration: null, reason: `fail2ban ${ev.jail}: Unban` }];
    return [
      {
        ...common,
        type: 'ban',
        hits: 1,
        duration: o.bantime ?? 600,
        reason: `fail2ban ${ev.jail}: ${ev.word}`,
      },
    ];
  };
}

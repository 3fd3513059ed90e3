import { rmSync, writeFileSync } from 'node:fs';
import type { Target } from '../../core/address.js';
import type { DurationSeconds } from '../../core/duration.js';
import { ConfigError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { Engine } from '../../detect/engine.js';
import type { DetectEvent } from '../../detect/types.js';
import { createFirewall } from '../../firewall/create.js';
import { runTool } from '../../firewall/run-tool.js';
import type { Firewall } from '../../firewall/types.js';
import { SyslogSource } from '../../sources/syslog.js';
import { loadSyslogBlacklistConf } from '../syslog-blacklist-conf.js';

/** The operator's sets: never written, and a whitelisted address is never banned. */
export const PROTECTED_SETS = ['whitelist', 'blackout'] as const;

export interface SyslogBlacklistOptions {
  listen: { host: string; port: number };
  /** The ipset bans go to (`--blacklist`); IPv6 bans to `NAME-v6`. */
  set: string;
  /** `--blocked`: the ban length of a section header without a time. */
  blocked: DurationSeconds;
  config: string;
  pidfile?: string;
  /** `ipset` (the original's) or `nftables`. */
  backend: 'ipset' | 'nftables';
  logger: Logger;
}

const SOURCE = 'syslog:udp';
/** rsyslog's own default message size: longer datagrams are cut (and logged) before matching. */
const MAX_MESSAGE_BYTES = 8192;
/** How much of a bad message a log line quotes. */
const QUOTE = 120;

/**
 * `rampart syslog-blacklist`: a syslog listener (UDP, as the local syslog daemon forwards a copy)
 * whose `[name] 12h` sections ban on the first matching line, into the blacklist ipset with the
 * section's time as the kernel timeout, on rampart's syslog source, detection engine and firewall.
 */
export class SyslogBlacklistDaemon {
  private engine: Engine | undefined;
  private source: SyslogSource | undefined;
  private fw: Firewall | undefined;
  private queue: DetectEvent[] = [];
  private running: Promise<void> | undefined;
  private wrotePid = false;

  constructor(private readonly o: SyslogBlacklistOptions) {
    // SET-v6 takes the IPv6 bans: neither name may be one of the operator's sets (or their -v6).
    const own = PROTECTED_SETS.flatMap((p) => [p, `${p}-v6`]);
    if (own.includes(o.set) || own.includes(`${o.set}-v6`)) {
      throw new ConfigError(`--blacklist: "${o.set}" is the operator's own set and is never written`);
    }
  }

  /** Reads the config (again on SIGHUP); a broken file keeps the running rules. */
  load(): void {
    const rules = loadSyslogBlacklistConf(this.o.config, {
      set: this.o.set,
      defaultBantime: this.o.blocked,
      sources: [SOURCE],
    });
    this.engine = new Engine(rules, { clock: 'wall', linear: 'prefer' });
    this.o.logger.info({ config: this.o.config, sections: rules.map((r) => r.name) }, 'read config');
  }

  reload(): void {
    try {
      this.load();
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message },
        'reload failed; keeping the running configuration',
      );
    }
  }

  /** On any failure (a port in use, an unwritable pidfile) what was opened is closed again. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private async open(): Promise<void> {
    this.load();
    this.fw = this.newFirewall();
    await this.fw.init();
    this.source = new SyslogSource({
      udp: this.o.listen,
      logger: this.o.logger,
      name: 'syslog-blacklist',
      maxMessageBytes: MAX_MESSAGE_BYTES,
    });
    await this.source.start((line) => {
      this.o.logger.debug({ line: line.text }, 'received');
      if (!this.usable(line.text)) return;
      const engine = this.engine!;
      const skipped = engine.stats().skipped;
      const events = engine.feed(line);
      if (engine.stats().skipped > skipped) {
        this.o.logger.warn(
          { line: line.text.slice(0, QUOTE) },
          'matched, but the address is never banned (loopback or unspecified)',
        );
      }
      for (const ev of events) if (ev.type === 'ban') this.queue.push(ev);
      if (this.queue.length > 0) this.running ??= this.drain();
    });
    if (this.o.pidfile) {
      try {
        writeFileSync(this.o.pidfile, `${process.pid}\n`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new ConfigError(`--pidfile: cannot write ${this.o.pidfile} (${code})`);
      }
      this.wrotePid = true;
    }
    this.o.logger.info({ listen: this.address() }, 'listening');
  }

  private newFirewall(): Firewall {
    const logger = this.o.logger;
    return this.o.backend === 'nftables'
      ? createFirewall({ backend: 'nftables' }, { logger })
      : createFirewall({ backend: 'ipset', ipset: { defaultSet: this.o.set } }, { logger });
  }

  /** Where the listener is bound (`--listen 127.0.0.1:0` picks a port). */
  address(): string {
    const a = this.source?.addresses().udp;
    return a ? `${a.address}:${a.port}` : '';
  }

  /**
   * One warning per malformed datagram, quoting its start; the line is still matched (a pattern
   * may well find an address in it) unless there is nothing to match.
   */
  private usable(text: string): boolean {
    const log = this.o.logger;
    if (text.trim() === '') {
      log.warn('empty syslog message: ignored');
      return false;
    }
    if (text.includes('\ufffd')) {
      log.warn(
        { line: text.slice(0, QUOTE) },
        'syslog message is not valid UTF-8: bad bytes replaced by U+FFFD',
      );
    }
    return true;
  }

  private async whitelisted(t: Target): Promise<boolean> {
    // The whitelist ipset is asked whatever the backend (it is the operator's, from the
    // original's setup); no ipset program or no such set means nobody is whitelisted.
    // Asked at ban time, so an address the operator whitelists a second ago is already spared.
    // IPv6 addresses are looked up in whitelist-v6, as bans go to SET-v6.
    const set = t.family === 6 ? `${PROTECTED_SETS[0]}-v6` : PROTECTED_SETS[0];
    const r = await runTool('ipset', ['test', set, t.text], { timeoutMs: 10_000 });
    return r.code === 0;
  }

  private async drain(): Promise<void> {
    const log = this.o.logger;
    while (this.queue.length > 0) {
      const ev = this.queue.shift()!;
      if (await this.whitelisted(ev.target)) {
        log.info({ ip: ev.target.text, section: ev.rule }, 'whitelisted: not blacklisting');
        continue;
      }
      const where = { ip: ev.target.text, section: ev.rule };
      this.fw!.add(ev.target, ev.duration, this.o.set);
      try {
        const refused = (await this.fw!.commit()).refused ?? [];
        for (const r of refused) log.error({ ...where, err: r.reason }, 'blacklisting failed');
        // Logged once the set holds it, so the line never claims a ban the kernel refused.
        if (refused.length === 0) {
          log.info({ ...where, seconds: ev.duration }, `blacklisting ${ev.target.text} for ${ev.rule}`);
        }
      } catch (err) {
        log.error({ ...where, err: (err as Error).message }, 'blacklisting failed');
        // Dropped, not retried forever: a missing set would otherwise fail every later ban.
        await this.fw!.shutdown();
        this.fw = this.newFirewall();
      }
    }
    this.running = undefined;
  }

  async close(): Promise<void> {
    await this.source?.stop();
    while (this.running) await this.running;
    await this.fw?.shutdown();
    // Only a pidfile this process wrote: another instance's is not ours to remove.
    if (this.o.pidfile && this.wrotePid) rmSync(this.o.pidfile, { force: true });
  }
}

import { hostname as osHostname } from 'node:os';
import { Subscriber } from 'zeromq';
import { clip } from '../../core/address.js';
import { RampartError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { Fail2banClientFirewall } from '../../firewall/fail2ban-client.js';
import { runTool } from '../../firewall/run-tool.js';
import { DEFAULT_SET } from '../../firewall/staging.js';
import type { Firewall } from '../../firewall/types.js';
import type { CompatMetrics } from '../metrics.js';
import type { SubscriberConfig } from './config.js';
import { type ClusterMessage, checkBroadcast, isBan } from './frame.js';
import { TOOL } from './publisher.js';

export interface SubscriberOptions {
  config: SubscriberConfig;
  log: Logger;
  metrics: CompatMetrics;
  /** Our own name: broadcasts from it are ignored. Default: the machine's host name. */
  hostname?: string;
  /** For `subscriberaction = firewall`: rampart's firewall (from rampart.yaml or --firewall). */
  firewall?: Firewall;
  /** For `subscriberaction = fail2banclient`: fail2ban's socket, when not the default. */
  fail2banSocket?: string;
  /** For `subscriberaction = log`: the syslog tag; default the original's program name. */
  syslogTag?: string;
  /** Every accepted broadcast after it was acted on (tests, the fleet bridge). */
  onMessage?: (m: ClusterMessage, outcome: 'applied' | 'own' | 'failed') => void;
}

/**
 * fail2ban-zmq-tools' subscriber: SUB to every broadcast, the original's checks, broadcasts from
 * our own host name ignored, and then the action: `log` writes the line the original wrote (to
 * syslog, facility auth) for the `fail2bancluster` fail2ban filter; `fail2banclient` runs
 * `fail2ban-client set JAIL banip|unbanip IP` (what the original planned); `firewall` bans in
 * rampart's own firewall. Messages are handled one at a time, in order.
 */
export class ClusterSubscriber {
  private readonly sub = new Subscriber({ linger: 0 });
  private readonly hostname: string;
  private readonly f2b: Fail2banClientFirewall | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: SubscriberOptions) {
    this.hostname = o.hostname ?? osHostname();
    if (o.config.action === 'firewall' && !o.firewall) {
      throw new RampartError('E_CONFIG', 'subscriberaction = firewall needs a firewall backend (--firewall)');
    }
    if (o.config.action === 'fail2banclient') {
      this.f2b = new Fail2banClientFirewall({ socket: o.fail2banSocket, jail: o.config.jail });
    }
  }

  async start(): Promise<void> {
    await this.o.firewall?.init();
    this.sub.subscribe();
    try {
      this.sub.connect(this.o.config.publisherUrl);
    } catch (err) {
      throw new RampartError(
        'E_BUS',
        `f2b-zmq subscriber: cannot connect to ${this.o.config.publisherUrl}: ${(err as Error).message}`,
      );
    }
    this.loop = this.run();
    this.o.log.info(
      { publisher: this.o.config.publisherUrl, action: this.o.config.action },
      'f2b-zmq subscriber running',
    );
  }

  private async run(): Promise<void> {
    const { log, metrics } = this.o;
    for (;;) {
      let parts: Buffer[];
      try {
        parts = await this.sub.receive();
      } catch {
        return;
      }
      const frame = parts[0] ?? Buffer.alloc(0);
      const r = parts.length > 1 ? ({ ok: false, reason: 'multipart' } as const) : checkBroadcast(frame);
      if (!r.ok) {
        metrics.dropped.inc({ tool: TOOL, reason: r.reason });
        log.warn(
          { reason: r.reason, frame: clip(frame.toString('latin1')) },
          'f2b-zmq subscriber: refused broadcast',
        );
        continue;
      }
      const m = r.message;
      if (m.hostname === this.hostname) {
        metrics.handled.inc({ tool: TOOL, what: 'own' });
        log.debug({ hostname: m.hostname }, 'f2b-zmq subscriber: our own broadcast, ignored');
        this.o.onMessage?.(m, 'own');
        continue;
      }
      let outcome: 'applied' | 'failed' = 'applied';
      try {
        await this.act(m, r.text);
        metrics.handled.inc({ tool: TOOL, what: `${this.o.config.action}` });
        log.info(
          { action: m.action, attacker: m.attacker, jail: m.jail, from: m.hostname },
          'f2b-zmq subscriber: applied',
        );
      } catch (err) {
        outcome = 'failed';
        metrics.dropped.inc({ tool: TOOL, reason: 'action-failed' });
        log.error(
          { err: (err as Error).message, attacker: m.attacker, jail: m.jail },
          'f2b-zmq subscriber: action failed',
        );
      }
      this.o.onMessage?.(m, outcome);
    }
  }

  private async act(m: ClusterMessage, text: string): Promise<void> {
    const c = this.o.config;
    if (c.action === 'log') {
      // The line the shipped fail2bancluster.conf filter matches (`Subscriber: Got broadcast
      // message: host|jail|Ban|<HOST>`); the original's actually had a run of spaces after the
      // colon (a continued string literal), which that filter never matched.
      const line = `fail2ban-zmq-tools Subscriber: Got broadcast message: ${text}`;
      const tag = this.o.syslogTag ?? 'fail2ban-subscriber.py';
      const r = await runTool('logger', ['--id', '-t', tag, '-p', 'auth.info', '--', line]);
      if (r.code !== 0 || r.spawnError) {
        throw new RampartError('E_SOURCE', `logger failed: ${r.spawnError?.message ?? r.stderr.trim()}`);
      }
      return;
    }
    const fw = c.action === 'firewall' ? this.o.firewall! : this.f2b!;
    let set = DEFAULT_SET;
    if (c.action === 'fail2banclient' && !c.jail) {
      if (!m.jail)
        throw new RampartError('E_CONFIG', 'the broadcast names no jail and [subscriber] sets no jail');
      set = m.jail;
    }
    if (isBan(m.action)) fw.add(m.target, c.bantime, set);
    else fw.delete(m.target, set);
    await fw.commit();
  }

  /** Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.sub.close();
    }
    await this.loop;
    await this.o.firewall?.shutdown().catch(() => {});
  }
}

import { Reply, XPublisher } from 'zeromq';
import { clip } from '../../core/address.js';
import { RampartError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { CompatMetrics } from '../metrics.js';
import type { PublisherConfig } from './config.js';
import { type ClusterMessage, checkRequest, NAK } from './frame.js';

export const TOOL = 'f2b-zmq';

export interface PublisherOptions {
  config: PublisherConfig;
  log: Logger;
  metrics: CompatMetrics;
  /** Every accepted frame, after it was answered and broadcast (the bridge into the fleet). */
  onMessage?: (m: ClusterMessage) => void;
}

/** libzmq drops (without an answer) anything bigger; below it, oversized frames get a NAK. */
const HARD_LIMIT = 64 * 1024;

/**
 * fail2ban-zmq-tools' publisher: REP for monitors (the original's checks; the answer is the
 * frame minus its token, or `NAK`), PUB for subscribers. The broadcast socket is an XPUB, which
 * is a PUB to every SUB peer but also tells us when one subscribes (tests and the log use it).
 * Unlike the original, an empty frame (which wedged the original's REP socket), a frame that
 * would have crashed its thread and an oversized one are all answered `NAK`.
 */
export class ClusterPublisher {
  private readonly rep = new Reply({ maxMessageSize: HARD_LIMIT, linger: 0 });
  private readonly pub = new XPublisher({ linger: 0, verbosity: 'allSubsUnsubs' });
  private subscribers = 0;
  private waiters: Array<() => void> = [];
  private loops: Promise<void>[] = [];
  private closed = false;

  constructor(private readonly o: PublisherOptions) {}

  get replyEndpoint(): string {
    return this.rep.lastEndpoint ?? this.o.config.replyUrl;
  }

  get broadcastEndpoint(): string {
    return this.pub.lastEndpoint ?? this.o.config.broadcastUrl;
  }

  async start(): Promise<void> {
    const c = this.o.config;
    for (const [sock, url, key] of [
      [this.pub, c.broadcastUrl, 'broadcasterbindurl'],
      [this.rep, c.replyUrl, 'replybindurl'],
    ] as const) {
      try {
        await sock.bind(url);
      } catch (err) {
        this.close();
        throw new RampartError(
          'E_BUS',
          `f2b-zmq publisher: cannot bind ${key} ${url}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    this.loops = [this.serve(), this.watchSubscriptions()];
    this.o.log.info(
      { reply: this.replyEndpoint, broadcast: this.broadcastEndpoint },
      'f2b-zmq publisher listening',
    );
  }

  /** Resolves once at least one subscriber has subscribed. */
  subscribed(): Promise<void> {
    if (this.subscribers > 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Broadcasts one frame to the subscribers (used by the fleet bridge too). */
  async broadcast(text: string): Promise<void> {
    if (this.closed) return;
    await this.pub.send(text);
  }

  private async serve(): Promise<void> {
    const { log, metrics, config } = this.o;
    for (;;) {
      let parts: Buffer[];
      try {
        parts = await this.rep.receive();
      } catch {
        return; // closed
      }
      const frame = parts[0] ?? Buffer.alloc(0);
      const r =
        parts.length > 1
          ? ({ ok: false, reason: 'multipart' } as const)
          : checkRequest(frame, { on: config.auth, token: config.token }, config.maxFrameBytes);
      try {
        if (!r.ok) {
          metrics.dropped.inc({ tool: TOOL, reason: r.reason });
          // The frame is the attacker's text: a field, clipped, never the message.
          log.warn(
            { reason: r.reason, frame: clip(frame.toString('latin1'), 80) },
            'f2b-zmq publisher: refused frame, answered NAK',
          );
          await this.rep.send(NAK);
          continue;
        }
        await this.rep.send(r.text);
        await this.pub.send(r.text);
        metrics.handled.inc({ tool: TOOL, what: 'published' });
        const m = r.message;
        log.info(
          { action: m.action, attacker: m.attacker, jail: m.jail, hostname: m.hostname },
          'f2b-zmq publisher: propagating',
        );
        this.o.onMessage?.(m);
      } catch (err) {
        if (this.closed) return;
        log.error({ err: (err as Error).message }, 'f2b-zmq publisher: send failed');
      }
    }
  }

  /** XPUB delivers `\x01topic` on subscribe and `\x00topic` on unsubscribe. */
  private async watchSubscriptions(): Promise<void> {
    for (;;) {
      let parts: Buffer[];
      try {
        parts = await this.pub.receive();
      } catch {
        return;
      }
      const kind = parts[0]?.[0];
      if (kind === 1) {
        this.subscribers++;
        this.o.log.info({ subscribers: this.subscribers }, 'f2b-zmq publisher: a subscriber joined');
        for (const w of this.waiters.splice(0)) w();
      } else if (kind === 0) this.subscribers = Math.max(0, this.subscribers - 1);
    }
  }

  /** Idempotent. */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.rep.close();
      this.pub.close();
    }
    return Promise.all(this.loops).then(() => {});
  }
}

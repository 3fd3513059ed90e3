import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { Request } from 'zeromq';
import { clip } from '../../core/address.js';
import type { Logger } from '../../core/logger.js';
import { FileSource } from '../../sources/file.js';
import { PositionFile } from '../../sources/position-file.js';
import { type Fail2banLogEvent, parseFail2banLogLine } from '../fail2ban/log-line.js';
import type { CompatMetrics } from '../metrics.js';
import type { MonitorConfig } from './config.js';
import { encodeRequest, MAX_FRAME_BYTES, NAK } from './frame.js';
import { TOOL } from './publisher.js';
import { Spool } from './spool.js';

export interface MonitorOptions {
  config: MonitorConfig;
  /** Folder for the spool and the log position. */
  stateDir: string;
  log: Logger;
  metrics: CompatMetrics;
  /** The name sent in every frame; default the machine's host name (as the original). */
  hostname?: string;
  /** How long to wait for the publisher's answer before trying again; default 5000 ms. */
  answerTimeoutMs?: number;
  /** Longest pause between attempts while the publisher is away; default 30000 ms. */
  maxBackoffMs?: number;
  /** Read an existing log from its start instead of its end (replays, tests). */
  fromStart?: boolean;
  /** Each frame the publisher answered, with the verdict (tests, status). */
  onSettled?: (frame: string, verdict: 'delivered' | 'nak' | 'unexpected-answer') => void;
}

/** The jail fed by the subscriber's own log line: forwarding it would loop forever. */
const CLUSTER_JAIL = 'fail2bancluster';

/**
 * fail2ban-zmq-tools' monitor: follows fail2ban.log (rotation included, resuming where it left
 * off after a restart) and sends each ban and unban to the publisher over REQ, one at a time,
 * waiting for the answer. What the publisher has not answered stays in the spool on disk and is
 * sent again, in order, when it is back: an answer that does not come within the timeout closes
 * the REQ socket (a REQ socket cannot send twice without an answer) and the next attempt uses a
 * new one, so a dead publisher never blocks the monitor.
 */
export class ClusterMonitor {
  readonly spool: Spool;
  private readonly positions: PositionFile;
  private readonly source: FileSource;
  private readonly hostname: string;
  private sock: Request | undefined;
  private sending: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private wake: (() => void) | undefined;
  private readonly idle: Array<() => void> = [];

  constructor(private readonly o: MonitorOptions) {
    this.hostname = o.hostname ?? osHostname();
    this.spool = new Spool(o.config.spool ?? join(o.stateDir, 'monitor-spool.json'));
    this.positions = new PositionFile(join(o.stateDir, 'monitor-position.json'), 0);
    this.source = new FileSource({
      paths: [o.config.logPath],
      positions: this.positions,
      logger: o.log,
      name: 'fail2ban.log',
      fromStart: o.fromStart,
    });
  }

  async start(): Promise<void> {
    this.o.metrics.pending.set({ tool: TOOL }, this.spool.size);
    if (this.spool.size > 0)
      this.o.log.info({ pending: this.spool.size }, 'f2b-zmq monitor: resending the spool');
    await this.source.start((line) => this.onLine(line.text));
    this.kick();
    this.o.log.info(
      { log: this.o.config.logPath, publisher: this.o.config.replyServer },
      'f2b-zmq monitor running',
    );
  }

  /** Resolves when everything read so far has been answered by the publisher. */
  drained(): Promise<void> {
    if (this.spool.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  onLine(text: string): void {
    const ev = parseFail2banLogLine(text);
    if (!ev || ev.jail === CLUSTER_JAIL) return;
    this.enqueue(ev);
  }

  private enqueue(ev: Fail2banLogEvent): void {
    const { log, metrics, config } = this.o;
    if (!ev.target) {
      metrics.dropped.inc({ tool: TOOL, reason: 'not-an-address' });
      log.warn(
        { jail: ev.jail, subject: clip(ev.subject) },
        'f2b-zmq monitor: ban of something that is not an address, not sent',
      );
      return;
    }
    // `Restore Ban` is a ban still in force after fail2ban restarted: peers learn it as a Ban.
    const action = ev.restored ? 'Ban' : ev.word;
    const frame = encodeRequest(
      { hostname: this.hostname, jail: ev.jail, action, attacker: ev.subject },
      { on: config.auth, token: config.token },
    );
    if (Buffer.byteLength(frame) > MAX_FRAME_BYTES) {
      metrics.dropped.inc({ tool: TOOL, reason: 'oversized' });
      log.warn(
        { jail: ev.jail, attacker: ev.subject, bytes: Buffer.byteLength(frame) },
        `f2b-zmq monitor: frame over ${MAX_FRAME_BYTES} bytes, which a publisher refuses; not sent`,
      );
      return;
    }
    this.spool.push(frame);
    metrics.pending.set({ tool: TOOL }, this.spool.size);
    this.kick();
  }

  private kick(): void {
    if (this.closed) return;
    if (this.sending) {
      this.again = true;
      this.wake?.();
      return;
    }
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    let failures = 0;
    for (let frame = this.spool.peek(); frame !== undefined && !this.closed; frame = this.spool.peek()) {
      const answer = await this.ask(frame);
      if (this.closed) return;
      if (answer === undefined) {
        failures++;
        const wait = Math.min(this.o.maxBackoffMs ?? 30_000, 250 * 2 ** Math.min(failures, 10));
        await this.pause(wait);
        continue;
      }
      failures = 0;
      this.settle(frame, answer);
      this.spool.shift();
      this.o.metrics.pending.set({ tool: TOOL }, this.spool.size);
    }
    if (this.spool.size === 0) for (const w of this.idle.splice(0)) w();
  }

  private settle(frame: string, answer: string): void {
    const { log, metrics, config } = this.o;
    // The publisher echoes the frame without the token (so the original monitor, comparing with
    // the token still on, never saw its ACK match).
    const body = config.auth ? frame.slice(config.token.length + 1) : frame;
    if (answer === body || answer === frame) {
      metrics.handled.inc({ tool: TOOL, what: 'delivered' });
      log.info({ frame: body }, 'f2b-zmq monitor: publisher acknowledged');
      this.o.onSettled?.(body, 'delivered');
      return;
    }
    const verdict = answer === NAK ? 'nak' : 'unexpected-answer';
    this.o.onSettled?.(body, verdict);
    if (answer === NAK) {
      metrics.dropped.inc({ tool: TOOL, reason: 'nak' });
      log.warn(
        { frame: body },
        'f2b-zmq monitor: publisher answered NAK (bad token or a field it refuses); dropped',
      );
    } else {
      metrics.dropped.inc({ tool: TOOL, reason: 'unexpected-answer' });
      log.warn(
        { frame: body, answer: clip(answer) },
        'f2b-zmq monitor: unexpected answer from the publisher; dropped',
      );
    }
  }

  /** One request; undefined when no answer came in time (the socket is then thrown away). */
  private async ask(frame: string): Promise<string | undefined> {
    if (!this.sock) {
      this.sock = new Request({
        receiveTimeout: this.o.answerTimeoutMs ?? 5000,
        sendTimeout: 1000,
        linger: 0,
      });
      try {
        this.sock.connect(this.o.config.replyServer);
      } catch (err) {
        this.o.log.error({ err: (err as Error).message }, 'f2b-zmq monitor: cannot connect');
        this.reset();
        return undefined;
      }
    }
    const sock = this.sock;
    try {
      await sock.send(frame);
      const [reply] = await sock.receive();
      return reply?.toString('utf8') ?? '';
    } catch (err) {
      if (!this.closed) {
        this.o.log.warn(
          { err: (err as Error).message, pending: this.spool.size },
          'f2b-zmq monitor: no answer from the publisher; will retry',
        );
      }
      this.reset();
      return undefined;
    }
  }

  private reset(): void {
    this.sock?.close();
    this.sock = undefined;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /** Idempotent: stops reading, abandons the request in flight (it stays in the spool). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.stop();
    this.positions.close();
    this.wake?.();
    this.reset();
    await this.sending;
  }
}

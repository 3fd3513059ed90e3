import type { KeyObject } from 'node:crypto';
import type { Transport } from '../bus/transport.js';
import type { Logger } from '../core/logger.js';
import { seal } from '../trust/envelope.js';
import { HubHttpError } from './hub-api.js';
import type { AgentState } from './state.js';

function isRefusal(err: unknown): boolean {
  return (
    err instanceof HubHttpError &&
    err.status >= 400 &&
    err.status < 500 &&
    ![401, 403, 408, 429].includes(err.status)
  );
}

/** What a report carries (the fleet contract's `report` body). */
export interface ReportBody {
  target: string;
  rule: string;
  reason: string;
  hits: number;
  duration: number | null;
  /** Detection time, epoch ms. */
  at: number;
  set: string;
}

/** `POST /v1/reports` answer. */
export interface ReportAnswer {
  result?: string;
  reason?: string;
  /** For a refusal: `invalid`, `unbannable`, `allowlisted` or `rate-limited` (hub/policy.ts). */
  refusal?: string;
  decision?: unknown;
}

export interface OutboxOptions {
  state: AgentState;
  node: string;
  privateKey: KeyObject;
  /** The bus and its topic; when it is down or refuses, `post` is tried. */
  transport?: Transport;
  topic: string;
  /** HTTP delivery (HubApi.report). */
  post?: (envelope: Buffer) => Promise<ReportAnswer>;
  /**
   * A hub in this process (`rampart up`) takes the report as it is: no seal, no HTTP round trip, no
   * signature check on the other side. Tried first; a throw falls back to `post` and the bus.
   */
  handOver?: (body: ReportBody) => Promise<ReportAnswer>;
  /** The hub's verdict on a report delivered over HTTP (or handed over). */
  onAnswer?: (body: ReportBody, answer: ReportAnswer) => void;
  log: Logger;
  retryMs?: number;
  encryptKey?: Buffer;
}

/**
 * Delivers reports in the order they were made, never losing one: each is written to the state's
 * outbox first and removed only once the hub's HTTP API took it or the broker acknowledged it
 * (QoS 1). Reports are stored unsigned and sealed at send time, so one that waited through a long outage
 * still falls inside the receiver's time window.
 */
export class Outbox {
  delivered = 0;
  failures = 0;
  private busUp = false;
  private running: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private kickSoon: NodeJS.Immediate | undefined;

  constructor(private readonly o: OutboxOptions) {}

  /**
   * Records a report durably and starts delivering it on the next turn of the event loop: the
   * local ban that caused it is committed first (its commit was scheduled before), so sealing and
   * sending the report is never on the ban's path.
   */
  push(body: ReportBody): void {
    this.o.state.enqueue(body);
    if (this.kickSoon) return;
    this.kickSoon = setImmediate(() => {
      this.kickSoon = undefined;
      void this.kick();
    });
  }

  get busIsUp(): boolean {
    return this.busUp;
  }

  /** Tells the outbox whether the bus is connected (Transport.onStatus). */
  setBusUp(up: boolean): void {
    this.busUp = up;
    if (up) void this.kick();
  }

  /** Delivers everything pending; resolves when the queue is empty or delivery failed. */
  kick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  pending(): number {
    return this.o.state.outboxSize();
  }

  /** Stops retrying and waits for a delivery in flight (bounded by the transport's own timeouts). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.kickSoon) clearImmediate(this.kickSoon);
    this.kickSoon = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.running;
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      for (;;) {
        if (this.stopped) return;
        const batch = this.o.state.peek(100);
        if (batch.length === 0) break;
        for (const item of batch) {
          if (this.stopped) return;
          if (!(await this.deliver(item.body))) {
            this.retryLater();
            return;
          }
          this.o.state.ack(item.id);
          this.delivered++;
        }
      }
    } while (this.again);
  }

  /**
   * HTTP first: its answer says whether the hub confirmed or refused the report, so a refused local
   * ban can be lifted; the bus (QoS 1) when the API is unreachable.
   */
  private async deliver(body: unknown): Promise<boolean> {
    if (this.o.handOver) {
      try {
        const answer = await this.o.handOver(body as ReportBody);
        this.o.onAnswer?.(body as ReportBody, answer);
        return true;
      } catch (err) {
        this.o.log.debug({ err: (err as Error).message }, 'report hand-over failed; trying HTTP');
      }
    }
    const env = seal('report', body, this.o.node, this.o.privateKey, { encryptKey: this.o.encryptKey });
    if (this.o.post) {
      try {
        // Not inside `onAnswer?.(...)`: optional-call arguments are skipped when it is absent.
        const answer = await this.o.post(env);
        this.o.onAnswer?.(body as ReportBody, answer);
        return true;
      } catch (err) {
        if (isRefusal(err)) {
          // The hub read it and said no (malformed, unbannable): retrying cannot change that.
          this.o.log.warn({ err: (err as Error).message, body }, 'hub refused a report; dropped from outbox');
          return true;
        }
        this.o.log.debug({ err: (err as Error).message }, 'report POST failed; trying the bus');
      }
    }
    if (this.o.transport && this.busUp) {
      try {
        await this.o.transport.publish(this.o.topic, env);
        return true;
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'report publish failed');
      }
    }
    this.failures++;
    this.o.log.warn({ pending: this.pending() }, 'hub and bus unreachable; report kept in outbox');
    return false;
  }

  private retryLater(): void {
    if (this.stopped || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.kick();
    }, this.o.retryMs ?? 2000);
    this.retryTimer.unref();
  }
}

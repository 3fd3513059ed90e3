import type { Logger } from '../../core/logger.js';
import { DEFAULT_MAX_ENVELOPE_BYTES, isValidSenderName } from '../../trust/envelope.js';
import type { HubCore } from '../core.js';
import { FairQueue, type FlowStats } from './fair-queue.js';
import type { OffenderThrottleOptions } from './offender-throttle.js';

export interface BusIntakeOptions {
  /** Messages one node may have waiting (default 1,000; its agent sends one at a time). */
  perNodeMessages?: number;
  /** Bytes one node may have waiting (default 4 MiB). */
  perNodeBytes?: number;
  /** Bytes every node together may have waiting (default 64 MiB). */
  totalBytes?: number;
  /** Work per event-loop turn before the sockets are read again (ms, default 2). */
  sliceMs?: number;
  /**
   * When the embedded broker stops reading a node whose messages keep being refused
   * (offender-throttle.ts); `false` turns it off.
   */
  throttle?: OffenderThrottleOptions | false;
}

interface Message {
  bytes: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** `rampart/<fleet>/reports/<node>`: the node, or undefined for a topic that names none. */
export function nodeOfTopic(topic: string): string | undefined {
  const t = topic.split('/');
  const node = t.length === 4 ? t[3]! : '';
  return isValidSenderName(node) ? node : undefined;
}

/**
 * Where the hub takes in what nodes publish (reports, heartbeats, fleet-counting hits): one queue
 * per node named by the topic, served round-robin (fair-queue.ts), so a node flooding the bus
 * delays another node's message by at most one of its own. Each message then goes through
 * HubCore's cheap checks, the budget, the verify and the work, in that order (ADR 0027).
 *
 * `take` resolves when the message has been handled (a report decided and stored), which is when
 * brokers with acknowledgements (JetStream, AMQP) are told to forget it; a message dropped here
 * (full queue, junk) is acknowledged too: delivering it again could not help.
 */
export class BusIntake {
  private readonly queue: FairQueue<Message>;

  constructor(
    private readonly core: HubCore,
    log: Logger,
    opts: BusIntakeOptions = {},
  ) {
    this.queue = new FairQueue<Message>({
      perKeyMessages: opts.perNodeMessages ?? 1_000,
      perKeyBytes: opts.perNodeBytes ?? 4 * 1024 * 1024,
      totalBytes: opts.totalBytes ?? 64 * 1024 * 1024,
      sliceMs: opts.sliceMs ?? 2,
      sizeOf: (m) => m.bytes.byteLength,
      overflow: (node, m) => {
        core.dropFromBus(node, 'queue-full');
        m.resolve();
      },
      serve: (node, m) => this.serve(node, m),
      onError: (node, err) =>
        log.error({ err: (err as Error).message, node }, 'handling a bus message failed'),
    });
  }

  /** A message as the transport delivered it. */
  take(topic: string, bytes: Buffer): Promise<void> {
    const node = nodeOfTopic(topic);
    // Refused before queueing: no queue for a topic that names no node, nothing big held.
    if (node === undefined) {
      this.core.drop('topic-mismatch');
      return Promise.resolve();
    }
    if (bytes.byteLength > DEFAULT_MAX_ENVELOPE_BYTES) {
      this.core.dropFromBus(node, 'too-large');
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push(node, { bytes, resolve, reject });
    });
  }

  /** Per node: queued now, peak queue length, messages served, longest wait (in messages served). */
  stats(): Map<string, FlowStats> {
    return this.queue.stats();
  }

  /** Messages waiting, all nodes. */
  get queued(): number {
    return this.queue.size;
  }

  /** Resolves once every queued message has been handed to the core (see HubCore.drain). */
  drain(): Promise<void> {
    return this.queue.idle();
  }

  private serve(node: string, m: Message): undefined | Promise<unknown> {
    try {
      return this.step(node, m);
    } catch (err) {
      // Settled either way: a broker with acks redelivers, and the queue goes on.
      m.reject(err);
      throw err;
    }
  }

  private step(node: string, m: Message): undefined | Promise<unknown> {
    const peeked = this.core.precheck(node, m.bytes);
    if (peeked === undefined) {
      m.resolve();
      return undefined;
    }
    if (!this.core.needsLookup(peeked.from)) {
      this.core.admit(node, peeked).then(m.resolve, m.reject);
      return undefined;
    }
    // A node another hub enrolled: this node's queue waits for the store lookup, so its
    // messages are still verified (and its reports decided) in the order they came.
    return this.core.lookUpSender(peeked.from).then(() => {
      this.core.admit(node, peeked).then(m.resolve, m.reject);
    }, m.reject);
  }
}

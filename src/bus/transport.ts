/**
 * The whole bus boundary: one implementation per file (embedded MQTT, external MQTT, NATS
 * JetStream, AMQP 0-9-1), chosen by config (create.ts). Payloads are opaque bytes (signed envelopes, see
 * trust/envelope.ts). Topics use `/` separators and MQTT-style wildcards in `subscribe`
 * (`+` one level, `#` the rest); implementations for other brokers translate.
 */
import type { Logger } from '../core/logger.js';

/** May return a promise (see {@link Transport.subscribe}); any other return value is ignored. */
export type MessageHandler = (topic: string, payload: Buffer) => unknown;

/**
 * Runs a handler so that neither a throw nor a rejection can reach the connection: resolves true
 * when it succeeded (acknowledge), false when it failed (logged; let the broker redeliver).
 */
export async function runHandler(
  handler: MessageHandler,
  topic: string,
  payload: Buffer,
  log: Logger,
): Promise<boolean> {
  try {
    await handler(topic, payload);
    return true;
  } catch (err) {
    log.error({ err: (err as Error).message, topic }, 'bus handler failed');
    return false;
  }
}

export interface Transport {
  readonly name: string;
  /** Resolves when connected (and, for an embedded broker, listening). */
  connect(): Promise<void>;
  /** At-least-once delivery to the broker (MQTT QoS 1); resolves when the broker acknowledged. */
  publish(topic: string, payload: Buffer): Promise<void>;
  /**
   * Delivers matching messages. A handler may return a promise: transports whose broker keeps
   * a message until it is acknowledged (JetStream, AMQP) acknowledge once it resolves and let the
   * broker redeliver when it rejects; MQTT acknowledges on receipt (QoS 1 PUBACK) either way.
   */
  subscribe(filter: string, handler: MessageHandler): Promise<void>;
  /** Called with `up` after every (re)connect, so the agent can catch up on what it missed. */
  onStatus(listener: (status: 'up' | 'down') => void): void;
  /**
   * Stops reading what `node` publishes for `ms` and returns how many of its connections that
   * held. Only a broker the hub runs itself (the embedded one) can; the others leave it out.
   */
  throttle?(node: string, ms: number): number;
  close(): Promise<void>;
}

/** Topic layout; `fleet` lets several fleets share one broker. */
export const topics = {
  decisions: (fleet: string) => `rampart/${fleet}/decisions`,
  reports: (fleet: string, node: string) => `rampart/${fleet}/reports/${node}`,
  allReports: (fleet: string) => `rampart/${fleet}/reports/+`,
} as const;

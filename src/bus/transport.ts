/**
 * The whole bus boundary: one implementation per file (embedded MQTT, external MQTT, later NATS,
 * AMQP, ZeroMQ), chosen by config. Payloads are opaque bytes (signed envelopes, see
 * trust/envelope.ts). Topics use `/` separators and MQTT-style wildcards in `subscribe`
 * (`+` one level, `#` the rest); implementations for other brokers translate.
 */
export interface Transport {
  readonly name: string;
  /** Resolves when connected (and, for an embedded broker, listening). */
  connect(): Promise<void>;
  /** At-least-once delivery to the broker (MQTT QoS 1); resolves when the broker acknowledged. */
  publish(topic: string, payload: Buffer): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<void>;
  /** Called with `up` after every (re)connect, so the agent can catch up on what it missed. */
  onStatus(listener: (status: 'up' | 'down') => void): void;
  close(): Promise<void>;
}

/** Topic layout; `fleet` lets several fleets share one broker. */
export const topics = {
  decisions: (fleet: string) => `rampart/${fleet}/decisions`,
  reports: (fleet: string, node: string) => `rampart/${fleet}/reports/${node}`,
  allReports: (fleet: string) => `rampart/${fleet}/reports/+`,
} as const;

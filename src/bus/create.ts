import { AmqpTransport } from './amqp.js';
import type { BusConfig } from './config.js';
import { type TransportContext, transportWith } from './from-config.js';
import { MqttClientTransport } from './mqtt-client.js';
import { EmbeddedMqttBroker } from './mqtt-embedded.js';
import { MqttHubGroup } from './mqtt-hub-group.js';
import { NatsTransport } from './nats.js';
import type { Transport } from './transport.js';

export type { BusConfig } from './config.js';
export { defaultClientId, natsStreams, type TransportContext } from './from-config.js';

const ALL = { AmqpTransport, EmbeddedMqttBroker, MqttClientTransport, MqttHubGroup, NatsTransport };

/**
 * Builds the Transport a hub or agent should use, with every transport loaded (a hub; an agent
 * loads only its own through `loadTransport`, bus/from-config.ts). See `transportWith`.
 */
export function createTransport(config: BusConfig, ctx: TransportContext): Transport {
  return transportWith(ALL, config, ctx);
}

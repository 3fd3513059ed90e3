import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import { transportContract } from './contract.js';

transportContract('embedded', async () => {
  const broker = new EmbeddedMqttBroker({ port: 0 });
  await broker.connect();
  return { port: broker.port!, stop: () => broker.close() };
});

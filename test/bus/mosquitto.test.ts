import { requirements } from '../helpers/requirements.js';
import { transportContract } from './contract.js';

const req = requirements('bus: Mosquitto contract', ['tcp:1883']);

transportContract('mosquitto', async () => ({ port: 1883, stop: async () => undefined }), req.skip);

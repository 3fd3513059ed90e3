/**
 * One hub for `fleet-sim`, in a process of its own so its CPU time can be read from /proc apart
 * from the thousands of light agents: `node fleet-sim-hub.js '<HubOptions JSON>'`. Prints one
 * JSON line when started, stops on SIGTERM.
 */
import { type HubOptions, startHub } from '../src/hub/hub.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as HubOptions;
const hub = await startHub({
  ...opts,
  // The light agents are not enrolled nodes: nothing else may be different from a real hub.
  brokerAuth: false,
  protectInterfaces: false,
});
process.stdout.write(
  `${JSON.stringify({ url: hub.url, bus: hub.busInfo, adminToken: hub.adminToken, publicKey: hub.publicKeyText })}\n`,
);
process.once('SIGTERM', () => {
  void hub.close().then(() => process.exit(0));
});

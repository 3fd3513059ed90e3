import { fleetSuite } from './fleet-suite.js';

// Mosquitto runs inside the hub's namespace on a port the test picks (the host's 127.0.0.1:1883
// is not reachable from the namespaces).
fleetSuite('mosquitto');

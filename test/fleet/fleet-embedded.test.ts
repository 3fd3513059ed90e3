import { fleetSuite } from './fleet-suite.js';

fleetSuite('embedded');

/** Benchmarks by name; each module's default export takes `emit` and prints JSON lines with it. */
export type Emit = (obj: Record<string, unknown>) => void;
type Bench = () => Promise<{ default: (emit: Emit) => Promise<void> }>;

export const benchmarks: Record<string, Bench> = {
  propagation: () => import('./propagation.js'),
  /** An agent's CPU per decision on the bus path, real processes; builds side by side (ADR 0044). */
  'agent-intake': () => import('./agent-intake.js'),
  'firewall-nft': () => import('./firewall-nft.js'),
  envelope: () => import('./envelope.js'),
  bus: () => import('./bus.js'),
  allowlist: () => import('./allowlist.js'),
  detect: () => import('./detect.js'),
  /** rampart check on a normal and a hostile auth log with a backtracking user rule loaded. */
  'hostile-lines': () => import('./hostile-lines.js'),
  hub: () => import('./hub.js'),
  'firewall-ipset': () => import('./firewall-ipset.js'),
  sources: () => import('./sources.js'),
  transports: () => import('./transports.js'),
  /** Only the hub half of `transports`: one hub against two on PostgreSQL, real agents and kernels. */
  'transports-hubs': () => import('./transports-hubs.js'),
  'fail2ban-filter': () => import('./fail2ban-filter.js'),
  /** Operator views (status counts, list filters) at 1,000,000 bans; `npm run bench -- list`. */
  list: () => import('./active-views.js'),
  crowdsec: () => import('./crowdsec.js'),
  /** An edge router's pull of 100,000 bans in each format, and a 304 poll. */
  blocklist: () => import('./blocklist.js'),
  /** Detection with the fleet hook off/on, and the hub's fleet counter under a 1M-address flood. */
  'fleet-counting': () => import('./fleet-counting.js'),
  /** One dashboard refresh over HTTP at 100,000 bans; `npm run bench -- dashboard`. */
  dashboard: () => import('./dashboard.js'),
  /** 1,000 and 5,000 light agents on every transport, one hub and two; `npm run bench -- fleet-sim`. */
  'fleet-sim': () => import('./fleet-sim.js'),
  /** rampart up as a user sees it: local and operator ban latency, memory, firewall add --from-file vs nft -f. */
  'up-latency': () => import('./up-latency.js'),
  /** An honest node's report latency, quiet and while another node floods the bus (ADR 0027). */
  flood: () => import('./flood.js'),
};

import { hostname as osHostname } from 'node:os';
import { isSingleHost, tryParseTarget } from '../../core/address.js';
import type { BridgeDirection, FleetBridge } from '../fleet-bridge.js';
import { type ClusterMessage, isBan, validHostname } from './frame.js';
import type { ClusterPublisher } from './publisher.js';

/** The jail name fleet decisions carry on the PUB socket (a subscriber's fail2ban needs such a jail). */
export const FLEET_JAIL = 'rampart';

/**
 * Joins a publisher to the fleet. `to-fleet`: every accepted Ban becomes a report (rule
 * `f2b-zmq/JAIL`), so it passes the hub's allowlist and policy; Unbans stay in the cluster (the
 * fleet's ban runs out by itself). `from-fleet`: every fleet decision for a single address is
 * broadcast as `HOST|rampart|Ban|ADDR` (or `Unban`) to subscribers that have not moved yet; a
 * CIDR range has no place in the frame and is skipped.
 */
export function bridgePublisher(o: {
  bridge: FleetBridge;
  direction: BridgeDirection;
  publisher: () => ClusterPublisher;
  bantime?: number;
  hostname?: string;
}): { onMessage?: (m: ClusterMessage) => void; start(): void } {
  const host = [o.hostname, osHostname()].find((h) => h !== undefined && validHostname(h)) ?? 'rampart';
  const toFleet = o.direction !== 'from-fleet';
  return {
    onMessage: toFleet
      ? (m) => {
          if (!isBan(m.action)) return;
          void o.bridge.report(
            m.target,
            `f2b-zmq/${m.jail || 'none'}`,
            `fail2ban-zmq-tools ${m.hostname} ${m.jail}`,
            o.bantime ?? 600,
          );
        }
      : undefined,
    start() {
      if (o.direction === 'to-fleet') return;
      o.bridge.follow(async (d) => {
        const t = tryParseTarget(d.target);
        if (!t || !isSingleHost(t)) return;
        await o
          .publisher()
          .broadcast(`${host}|${FLEET_JAIL}|${d.action === 'ban' ? 'Ban' : 'Unban'}|${t.text}`);
      });
    },
  };
}

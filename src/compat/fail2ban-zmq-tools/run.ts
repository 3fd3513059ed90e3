import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from '../../core/logger.js';
import { defaultDataDir } from '../../core/paths.js';
import type { Firewall } from '../../firewall/types.js';
import { type BridgeDirection, FleetBridge } from '../fleet-bridge.js';
import { CompatMetrics, serveMetrics } from '../metrics.js';
import { bridgePublisher } from './bridge.js';
import { loadClusterConfig, monitorConfig, publisherConfig, subscriberConfig } from './config.js';
import { ClusterMonitor } from './monitor.js';
import { ClusterPublisher } from './publisher.js';
import { ClusterSubscriber } from './subscriber.js';

export type Role = 'monitor' | 'publisher' | 'subscriber';

export interface RunOptions {
  role: Role;
  config?: string;
  hostname?: string;
  dataDir?: string;
  metrics?: string;
  fromStart?: boolean;
  fail2banSocket?: string;
  /** Built by the caller when the subscriber acts on rampart's firewall. */
  firewall?: () => Promise<Firewall>;
  /** Publisher only: join the fleet as the node enrolled in `dataDir` (see bridge.ts). */
  bridge?: BridgeDirection;
  log: Logger;
}

/** Starts one fail2ban-zmq-tools role; returns its close(). */
export async function runCluster(o: RunOptions): Promise<{ close(): Promise<void> }> {
  const cfg = loadClusterConfig(o.config);
  const warn = (message: string) => o.log.warn({ file: cfg.files[0] }, message);
  const metrics = new CompatMetrics();
  let http: Server | undefined;
  if (o.metrics) http = await serveMetrics(o.metrics, metrics);
  let role: { start(): Promise<void>; close(): Promise<void> };
  let fleet: FleetBridge | undefined;
  if (o.role === 'publisher') {
    fleet = o.bridge ? FleetBridge.open(o.dataDir ?? defaultDataDir(), 'f2b-zmq', o.log, metrics) : undefined;
    const link: ReturnType<typeof bridgePublisher> | undefined =
      fleet && o.bridge
        ? bridgePublisher({
            bridge: fleet,
            direction: o.bridge,
            publisher: (): ClusterPublisher => publisher,
            hostname: o.hostname,
          })
        : undefined;
    const publisher: ClusterPublisher = new ClusterPublisher({
      config: publisherConfig(cfg, warn),
      log: o.log,
      metrics,
      onMessage: link?.onMessage,
    });
    role = {
      start: async () => {
        await publisher.start();
        link?.start();
      },
      close: () => publisher.close(),
    };
  } else if (o.role === 'monitor') {
    role = new ClusterMonitor({
      config: monitorConfig(cfg, warn),
      stateDir: join(o.dataDir ?? defaultDataDir(), 'f2b-zmq'),
      log: o.log,
      metrics,
      hostname: o.hostname,
      fromStart: o.fromStart,
    });
  } else {
    const config = subscriberConfig(cfg, warn);
    role = new ClusterSubscriber({
      config,
      log: o.log,
      metrics,
      hostname: o.hostname,
      fail2banSocket: o.fail2banSocket,
      firewall: config.action === 'firewall' ? await o.firewall?.() : undefined,
    });
  }
  try {
    await role.start();
  } catch (err) {
    await role.close().catch(() => {});
    http?.close();
    throw err;
  }
  return {
    async close() {
      await fleet?.close();
      await role.close();
      http?.close();
    },
  };
}

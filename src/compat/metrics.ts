import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { RampartError } from '../core/errors.js';

/**
 * Counters for the compatibility daemons (fail2ban-zmq-tools, net2ban), on a registry of their
 * own so several daemons in one process (tests) never clash. Every refused frame or message is
 * one `dropped` increment with its reason, next to its one log line.
 */
export class CompatMetrics {
  readonly registry = new Registry();
  readonly dropped: Counter<'tool' | 'reason'>;
  readonly handled: Counter<'tool' | 'what'>;
  readonly pending: Gauge<'tool'>;

  constructor() {
    const registers = [this.registry];
    this.dropped = new Counter({
      name: 'rampart_compat_dropped_total',
      help: 'Frames or messages refused by a compatibility daemon, by tool and reason',
      labelNames: ['tool', 'reason'],
      registers,
    });
    this.handled = new Counter({
      name: 'rampart_compat_handled_total',
      help: 'Frames or messages accepted and handled, by tool and what was done',
      labelNames: ['tool', 'what'],
      registers,
    });
    this.pending = new Gauge({
      name: 'rampart_compat_pending',
      help: 'Messages waiting for delivery (the monitor spool), by tool',
      labelNames: ['tool'],
      registers,
    });
  }

  /** Current value of one dropped counter (tests, status lines). */
  async droppedCount(tool: string, reason: string): Promise<number> {
    const m = await this.dropped.get();
    return m.values.find((v) => v.labels.tool === tool && v.labels.reason === reason)?.value ?? 0;
  }
}

/** Serves `GET /metrics` on `host:port` (the `--metrics` option of the compatibility daemons). */
export async function serveMetrics(listen: string, metrics: CompatMetrics): Promise<Server> {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  if (!m) throw new RampartError('E_USAGE', `--metrics ${listen}: expected HOST:PORT`);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new RampartError('E_USAGE', `--metrics ${listen}: ${err.message}`)));
    server.listen(Number(m[2]), m[1]!.replace(/^\[|\]$/g, ''), () => resolve());
  });
  return server;
}

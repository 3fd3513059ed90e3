import { describe, expect, it } from 'vitest';
import { startMosquitto } from '../helpers/mosquitto.js';
import { createTestVhost } from '../helpers/rabbitmq.js';
import { requirements } from '../helpers/requirements.js';
import { faultCleanup, loadBans, ScaleFleet, v6Addrs } from './scale-harness.js';

const req = requirements('scale-out faults: RabbitMQ and Mosquitto', [
  'netns',
  'cmd:nft',
  'tcp:5672',
  'cmd:rabbitmqctl',
  'cmd:mosquitto',
  'file:dist/cli/main.js',
]);

/* Part of the scale-out fault suite (one file per fault family, so they run side by side):
   real hubs and agents, every agent's kernel compared with the log at the end. */
describe.skipIf(req.skip)('scale-out faults: RabbitMQ and Mosquitto', () => {
  const { cleanup, fleetName } = faultCleanup();

  /**
   * One hub and three agents on `bus`; `fault` hits the broker while 3,000 bans are loading. Every
   * agent's kernel must end with all of them, and the agents must really have seen the bus go down.
   */
  async function convergesThroughBusFault(
    label: string,
    bus: Record<string, unknown>,
    fault: () => Promise<void>,
  ): Promise<void> {
    const f = new ScaleFleet({ fleet: fleetName(), bus, hubs: 1, agents: 3 });
    cleanup.push(() => f.stop());
    await f.start();
    await loadBans(f, v6Addrs(3_000), {
      chunk: 200,
      fault: async (k) => {
        if (k === 5) await fault();
      },
    });
    const r = await f.expectConverged(label);
    expect(r.bans).toBe(3_000);
    expect(f.agents[0]!.count((l) => l.msg === 'bus' && l.status === 'down')).toBeGreaterThan(0);
  }

  it('RabbitMQ dropping every connection of the fleet mid-stream: agents converge', async () => {
    const vh = await createTestVhost();
    cleanup.push(() => vh.remove());
    await convergesThroughBusFault(
      'rabbitmq: every connection dropped',
      { type: 'amqp', url: vh.url() },
      () => vh.closeConnections(),
    );
  }, 300_000);

  it('Mosquitto restarted mid-stream: agents converge', async () => {
    const m = await startMosquitto();
    cleanup.push(() => m.stop());
    await convergesThroughBusFault(
      'mosquitto: restarted',
      { type: 'mqtt', url: `mqtt://127.0.0.1:${m.port}`, username: m.username, password: m.password },
      () => m.restart(),
    );
  }, 300_000);
});

import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedMqttBroker } from '../../src/bus/mqtt-embedded.js';
import type { MessageHandler, Transport } from '../../src/bus/transport.js';
import { open, ReplayCache } from '../../src/trust/envelope.js';
import { startTestHub, type TestHub, until } from './helpers.js';

/** A real (embedded) broker behind a switch that makes every publish fail, as a broker away does. */
class RefusingBus implements Transport {
  readonly name = 'refusing';
  refusing = false;
  readonly sent: Buffer[] = [];
  private readonly listeners: Array<(s: 'up' | 'down') => void> = [];
  constructor(private readonly inner: Transport) {}
  connect(): Promise<void> {
    return this.inner.connect();
  }
  async publish(topic: string, payload: Buffer): Promise<void> {
    if (this.refusing) throw new Error('broker away');
    await this.inner.publish(topic, payload);
    this.sent.push(payload);
  }
  subscribe(filter: string, handler: MessageHandler): Promise<void> {
    return this.inner.subscribe(filter, handler);
  }
  onStatus(listener: (s: 'up' | 'down') => void): void {
    this.listeners.push(listener);
  }
  status(s: 'up' | 'down'): void {
    for (const l of this.listeners) l(s);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('hub: decisions the bus refused are sent again', () => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  /** The seqs in what the hub managed to publish, in order, each envelope opened as an agent does. */
  const publishedSeqs = (bus: RefusingBus, hub: TestHub): number[] => {
    const replay = new ReplayCache();
    return bus.sent.flatMap((b) => {
      const r = open(b, {
        keyFor: (from) => (from === 'hub' ? hub.hub.publicKey : undefined),
        replay,
        expectKind: ['decision', 'decisions'],
      });
      if (!r.ok) throw new Error(`hub sent an envelope an agent drops: ${r.reason}`);
      const bodies = r.env.kind === 'decisions' ? (r.env.body as Array<{ seq: number }>) : [r.env.body];
      return (bodies as Array<{ seq: number }>).map((d) => d.seq);
    });
  };

  it('when the bus comes back up, in seq order, sealed anew', async () => {
    const bus = new RefusingBus(new EmbeddedMqttBroker({ port: 0 }));
    t = await startTestHub({ transport: bus, republishIntervalMs: 3_600_000 });
    const hub = t;
    expect((await hub.call('POST', '/v1/decisions', { target: '2001:db8::1' })).status).toBe(201);
    await until(() => bus.sent.length === 1);
    bus.refusing = true;
    for (const target of ['2001:db8::2', '2001:db8::3', '2001:db8::4'])
      expect((await hub.call('POST', '/v1/decisions', { target })).status).toBe(201);
    await until(() => hub.hub.core.unpublishedDecisions === 3);
    bus.refusing = false;
    bus.status('up');
    await until(() => hub.hub.core.unpublishedDecisions === 0);
    expect(publishedSeqs(bus, hub)).toEqual([1, 2, 3, 4]);
    expect(
      await hub.hub.metrics.registry.getSingleMetricAsString('rampart_hub_republished_decisions_total'),
    ).toMatch(/ 3$/m);
  });

  it('on the timer while the bus stays up (a publish refused without a disconnect)', async () => {
    const bus = new RefusingBus(new EmbeddedMqttBroker({ port: 0 }));
    t = await startTestHub({ transport: bus, republishIntervalMs: 50 });
    const hub = t;
    bus.refusing = true;
    expect((await hub.call('POST', '/v1/decisions', { target: '2001:db8::9' })).status).toBe(201);
    await until(() => hub.hub.core.unpublishedDecisions === 1);
    bus.refusing = false;
    await until(() => bus.sent.length === 1);
    expect(publishedSeqs(bus, hub)).toEqual([1]);
  });
});

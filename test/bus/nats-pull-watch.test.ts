import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { NatsTransport } from '../../src/bus/nats.js';
import { lineLogger } from '../../src/core/logger.js';
import { requirements } from '../helpers/requirements.js';
import { type NatsStatusProxy, startNatsStatusProxy } from './nats-status-proxy.js';

const local = requirements('bus: NATS pull without its 408', ['tcp:4222']);

describe.skipIf(local.skip)('nats pull that ends without a 408', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('nats - a pull the server dropped without its 408 is pulled again within a fraction of a beat, not after two missed heartbeats', async () => {
    const prefix = `pw${randomUUID().slice(0, 8)}`;
    const streams = [{ name: `RP_${prefix}`, topics: [`${prefix}/#`], retention: 'limits' as const }];
    const proxy: NatsStatusProxy = await startNatsStatusProxy(4222);
    cleanup.push(() => proxy.close());
    const lines: string[] = [];
    // Through the proxy, pinned: the client must not learn the real address and bypass it.
    const agent = new NatsTransport({
      servers: [`nats://127.0.0.1:${proxy.port}`],
      discover: false,
      clientId: `${prefix}-agent`,
      streams,
      heartbeatMs: 1_000,
      // Pulls of 5 beats, so the test sees two expiries in seconds (the default is 30 beats).
      pullExpiresMs: 5_000,
      logger: lineLogger((l) => lines.push(l), 'warn'),
    });
    const hub = new NatsTransport({ servers: ['nats://127.0.0.1:4222'], clientId: `${prefix}-hub`, streams });
    cleanup.push(
      () => agent.close(),
      () => hub.close(),
      () => hub.deleteStreams(),
    );
    await hub.connect();
    await agent.connect();
    const got: { n: string; at: number }[] = [];
    await agent.subscribe(`${prefix}/d`, async (_t, p) => {
      got.push({ n: p.toString(), at: Date.now() });
    });
    const send = async (n: string) => {
      const at = Date.now();
      await hub.publish(`${prefix}/d`, Buffer.from(n));
      return at;
    };
    const arrival = async (n: string) => {
      for (let i = 0; i < 100 && !got.some((g) => g.n === n); i++)
        await new Promise((r) => setTimeout(r, 50));
      return got.find((g) => g.n === n)?.at ?? Number.POSITIVE_INFINITY;
    };

    // A pull that ends with its 408 (5 beats) is followed by the next one: no warning.
    await new Promise((r) => setTimeout(r, 5_600));
    const sent1 = await send('one');
    expect((await arrival('one')) - sent1).toBeLessThan(500);
    expect(lines.filter((l) => l.includes('without a 408'))).toEqual([]);

    // The next pull's 408 never reaches the client: the server holds no pull for it, the client
    // thinks it does. A decision sent then waited for two missed heartbeats (2-3 s) before.
    await proxy.dropNextStatus(408);
    const sent2 = await send('two');
    const late = (await arrival('two')) - sent2;
    expect(late).toBeLessThan(800);
    expect(lines.filter((l) => l.includes('without a 408'))).toHaveLength(1);
  }, 30_000);
});

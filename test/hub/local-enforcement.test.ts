import { afterEach, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub, until } from './helpers.js';

// `rampart up` runs an agent beside the hub: an operator's ban or unban answers once this host's
// kernel holds it (core.localEnforcement), and a firewall that never answers does not hold it.
describe('hub: an operator answer waits for the local kernel commit under rampart up', () => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('answers a ban and an unban only after the local commit resolves', async () => {
    t = await startTestHub();
    for (const [method, path, body] of [
      ['POST', '/v1/decisions', { target: '192.0.2.10', duration: '1h' }],
      ['DELETE', '/v1/decisions/192.0.2.10', undefined],
    ] as const) {
      let asked = 0;
      let release!: () => void;
      const committed = new Promise<void>((r) => {
        release = r;
      });
      t.hub.core.localEnforcement = () => {
        asked++;
        return committed;
      };
      let answered = false;
      const reply = t.call(method, path, body).then((r) => {
        answered = true;
        return r;
      });
      await until(() => asked > 0);
      // A few turns of the event loop: an answer not waiting on the commit would be out by now.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(answered).toBe(false);
      release();
      expect((await reply).status).toBeLessThan(300);
    }
  });

  it('answers anyway when the local commit never resolves, and not for a ban it kept', async () => {
    t = await startTestHub();
    let asked = 0;
    t.hub.core.localEnforcement = () => {
      asked++;
      return new Promise<void>(() => {});
    };
    const first = await t.call('POST', '/v1/decisions', { target: '192.0.2.11', duration: '1h' });
    expect(first.status).toBe(201);
    expect(asked).toBe(1);
    // A shorter ban of the same address changes nothing (the longer one is kept): nothing to wait for.
    const again = await t.call('POST', '/v1/decisions', { target: '192.0.2.11', duration: '1m' });
    expect(again.status).toBe(200);
    expect(asked).toBe(1);
  });
});

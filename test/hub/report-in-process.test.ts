import { afterEach, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from './helpers.js';

const report = (n: number) => ({
  target: `198.51.100.${n}`,
  rule: 'sshd',
  reason: 'sshd: 5 failures',
  hits: 5,
  duration: 600,
  at: Date.now(),
  set: 'blocklist',
});

// `rampart up` hands its own node's reports to the hub object (no envelope): the same policy as
// a verified report, and only for a node enrolled here.
describe('hub: a report from the agent in the same process', () => {
  let t: TestHub | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('is decided like a verified report, and refused for a node that is unknown or removed', async () => {
    t = await startTestHub();
    await t.enrol('web1');
    const first = await t.hub.core.reportInProcess('web1', report(1));
    expect(first.result).toBe('ban');
    expect(first.decision).toMatchObject({ target: '198.51.100.1', origin: 'web1', action: 'ban' });
    // Policy applies as for any node: a repeat is a duplicate, an allowlisted address is refused.
    expect((await t.hub.core.reportInProcess('web1', report(1))).result).toBe('duplicate');
    expect((await t.call('POST', '/v1/allowlist', { cidr: '198.51.100.2/32' })).status).toBeLessThan(300);
    expect(await t.hub.core.reportInProcess('web1', report(2))).toMatchObject({
      result: 'refused',
      refusal: 'allowlisted',
    });

    await expect(t.hub.core.reportInProcess('ghost', report(3))).rejects.toMatchObject({ code: 'E_AUTH' });
    expect((await t.call('DELETE', '/v1/nodes/web1')).status).toBeLessThan(300);
    await expect(t.hub.core.reportInProcess('web1', report(4))).rejects.toMatchObject({ code: 'E_AUTH' });
    const listed = await t.call('GET', '/v1/decisions?since=0');
    expect(JSON.stringify(listed.json)).not.toContain('198.51.100.4');
  });
});

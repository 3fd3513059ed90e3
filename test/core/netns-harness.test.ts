import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, createLan, type Lan, tcpListener } from '../helpers/netns.js';
import { requirements } from '../helpers/requirements.js';

const req = requirements('netns harness', ['netns', 'cmd:nft']);

describe.skipIf(req.skip)('netns harness', () => {
  let lan: Lan;
  beforeAll(async () => {
    lan = await createLan(2, 'harn');
  });
  afterAll(async () => {
    await lan?.destroy();
  });

  it('connects over IPv4 and IPv6 until a raw nft rule drops the client, proving the probe can fail', async () => {
    const [server, client] = lan.hosts as [(typeof lan.hosts)[0], (typeof lan.hosts)[0]];
    const l = await tcpListener(server, 8080);
    try {
      expect(await canConnect(client, server.v4, 8080)).toBe(true);
      expect(await canConnect(client, server.v6, 8080)).toBe(true);
      await server.exec('nft', ['-f', '-'], {
        input: `table inet probe { chain in { type filter hook input priority 0; ip saddr ${client.v4} drop; ip6 saddr ${client.v6} drop; }; }\n`,
      });
      expect(await canConnect(client, server.v4, 8080, 500)).toBe(false);
      expect(await canConnect(client, server.v6, 8080, 500)).toBe(false);
    } finally {
      l.stop();
    }
  });
});

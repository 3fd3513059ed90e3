import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canConnect, createLan, type Host, type Lan, tcpListener } from '../../helpers/netns.js';
import { requirements } from '../../helpers/requirements.js';
import { tempDir } from '../tmp.js';
import { Broker, CLI, daemon } from './harness.js';

const req = requirements('rampart vallumd into nftables', [
  'root',
  'netns',
  'cmd:nft',
  'cmd:mosquitto',
  'cmd:mosquitto_pub',
  `file:${CLI}`,
]);
const PORT = 8080;

describe.skipIf(req.skip)(
  'rampart vallumd with the nftables backend, configured only by rampart.yaml',
  () => {
    const tmp = tempDir('vallumd-nft');
    let lan: Lan;
    let server: Host;
    let client: Host;
    let broker: Broker;
    let rampart: ReturnType<typeof daemon>;
    let listener: { stop(): void };

    beforeAll(async () => {
      lan = await createLan(3, 'vnft');
      [server, client] = lan.hosts as [Host, Host];
      broker = new Broker(lan.hosts[2]!, tmp.dir);
      await broker.start();
      listener = await tcpListener(server, PORT);
      const cfg = tmp.write(
        'rampart.yaml',
        `vallumd:\n  host: ${lan.hosts[2]!.v4}\n  topics: [blk]\n  clientId: vnft-test\n  backend: nftables\n  bantime: 1h\n`,
      );
      rampart = daemon(server, process.execPath, [CLI, 'vallumd', '--config', path.resolve(cfg)]);
      await broker.until((l) => l.includes('vnft-test 2 blk/#'));
    }, 120_000);

    afterAll(async () => {
      listener?.stop();
      await rampart?.stop('SIGKILL');
      await broker?.stop();
      await lan?.destroy();
    });

    it('blk/add drops the address (IPv4 and IPv6), blk/del lets it back in', async () => {
      expect(await canConnect(client, server.v4, PORT)).toBe(true);
      let from = rampart.output().length;
      await broker.publish('blk/add', Buffer.from(client.v4));
      await broker.publish('blk', Buffer.from(client.v6));
      await rampart.until(/"address":"2001:db8::2".*nftables: added/, from);
      expect(await canConnect(client, server.v4, PORT, 800)).toBe(false);
      expect(await canConnect(client, server.v6, PORT, 800)).toBe(false);
      const set = await server.exec('nft', ['list', 'set', 'inet', 'rampart', 'blk_v4']);
      expect(set).toContain(client.v4);
      expect(set).toMatch(/expires/);
      from = rampart.output().length;
      await broker.publish('blk/del', Buffer.from(client.v4));
      await rampart.until(/nftables: deleted/, from);
      expect(await canConnect(client, server.v4, PORT)).toBe(true);
    });
  },
);

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Request } from 'zeromq';
import type { ClusterMessage } from '../../../src/compat/fail2ban-zmq-tools/frame.js';
import { ClusterSubscriber } from '../../../src/compat/fail2ban-zmq-tools/subscriber.js';
import { CompatMetrics } from '../../../src/compat/metrics.js';
import { silentLogger } from '../../../src/core/logger.js';
import { NftablesFirewall } from '../../../src/firewall/nftables.js';
import { canConnect, createLan, tcpListener } from '../../helpers/netns.js';
import { requirements } from '../../helpers/requirements.js';
import { waitFor } from '../../sources/helpers.js';
import { freePort, ORIGINALS, startOriginal } from './originals.js';

const PORT = 2222;
const req = requirements('f2b-zmq subscriber → nftables', [
  'root',
  'netns',
  'cmd:nft',
  'cmd:/usr/bin/python3',
  `file:${ORIGINALS}/publisher.py`,
]);

describe.skipIf(req.skip)('original publisher → rampart subscriber (subscriberaction = firewall)', () => {
  it('a broadcast Ban drops the attacker’s TCP connections in a real kernel; Unban lets it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-f2bfw-'));
    const lan = await createLan(2, 'f2bz');
    const [server, attacker] = lan.hosts as [(typeof lan.hosts)[0], (typeof lan.hosts)[0]];
    const listener = await tcpListener(server, PORT);
    const [rep, pub] = [`tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`];
    const original = await startOriginal(dir, 'publisher', {
      replybindurl: rep,
      broadcasterbindurl: pub,
      auth: 'false',
      authtoken: '',
    });
    const seen: Array<[ClusterMessage, string]> = [];
    let heard: () => void = () => {};
    const heardOwn = new Promise<void>((r) => {
      heard = r;
    });
    const sub = new ClusterSubscriber({
      config: { publisherUrl: pub, action: 'firewall', bantime: 600 },
      log: silentLogger(),
      metrics: new CompatMetrics(),
      hostname: 'edge',
      firewall: new NftablesFirewall({ prefix: ['ip', 'netns', 'exec', server.ns], table: 'rpf2bz' }),
      onMessage: (m, outcome) => {
        seen.push([m, outcome]);
        if (outcome === 'own') heard();
      },
    });
    const client = new Request({ receiveTimeout: 5000, linger: 0 });
    client.connect(rep);
    const send = async (frame: string) => {
      await client.send(frame);
      return (await client.receive())[0]!.toString();
    };
    try {
      await sub.start();
      // PUB/SUB drops what precedes the subscription: probe with our own name until heard.
      for (let i = 0; i < 200 && !seen.length; i++) {
        await send(`edge|sshd|Ban|192.0.2.250`);
        await Promise.race([heardOwn, new Promise((r) => setTimeout(r, 25))]);
      }
      expect(await canConnect(attacker, server.v4, PORT)).toBe(true);
      expect(await send(`web1|sshd|Ban|${attacker.v4}`)).toBe(`web1|sshd|Ban|${attacker.v4}`);
      await waitFor(() => seen.filter(([, o]) => o === 'applied').length === 1, 'the ban applied');
      expect(await canConnect(attacker, server.v4, PORT, 800)).toBe(false);
      await send(`web1|sshd|Unban|${attacker.v4}`);
      await waitFor(() => seen.filter(([, o]) => o === 'applied').length === 2, 'the unban applied');
      expect(await canConnect(attacker, server.v4, PORT, 3000)).toBe(true);
    } finally {
      client.close();
      await sub.close();
      await original.stop();
      listener.stop();
      await lan.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

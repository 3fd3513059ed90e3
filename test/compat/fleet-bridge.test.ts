import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { Request, Subscriber } from 'zeromq';
import { HubApi } from '../../src/agent/hub-api.js';
import { bridgePublisher } from '../../src/compat/fail2ban-zmq-tools/bridge.js';
import { ClusterPublisher } from '../../src/compat/fail2ban-zmq-tools/publisher.js';
import { FleetBridge } from '../../src/compat/fleet-bridge.js';
import { CompatMetrics } from '../../src/compat/metrics.js';
import { loadNet2banConfig } from '../../src/compat/net2ban/config.js';
import { openBody, sessionKey } from '../../src/compat/net2ban/crypto.js';
import { execCommand, sendToServer } from '../../src/compat/net2ban/ctl.js';
import { startServer } from '../../src/compat/net2ban/daemon.js';
import { silentLogger } from '../../src/core/logger.js';
import { createVhost } from '../helpers/rabbitmq.js';
import { requirements } from '../helpers/requirements.js';
import { startTestHub, type TestHub } from '../hub/helpers.js';

const log = silentLogger();

async function bridgeFor(t: TestHub, name: string, tool: string): Promise<FleetBridge> {
  const node = await t.enrol(name);
  return new FleetBridge({
    hub: new HubApi(t.hub.url, node.token),
    name,
    privateKey: node.keys.privateKey,
    log,
    metrics: new CompatMetrics(),
    tool,
  });
}

async function decisionsOf(t: TestHub, rule: string, count: number) {
  for (let i = 0; i < 400; i++) {
    const all = (await t.call('GET', '/v1/decisions?since=0')).json.decisions as Array<
      Record<string, unknown>
    >;
    const hits = all.filter((d) => d.rule === rule);
    if (hits.length >= count) return hits;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${rule} decision on the hub`);
}

describe('bridges into the fleet', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-bridge-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('f2b-zmq publisher: a monitor’s Ban becomes a fleet decision; a fleet decision is broadcast to subscribers', async () => {
    const t = await startTestHub();
    const bridge = await bridgeFor(t, 'zmqbridge', 'f2b-zmq');
    const link = bridgePublisher({ bridge, direction: 'both', publisher: () => pub, hostname: 'hub1' });
    const pub: ClusterPublisher = new ClusterPublisher({
      config: { replyUrl: 'tcp://127.0.0.1:*', broadcastUrl: 'tcp://127.0.0.1:*', auth: false, token: '' },
      log,
      metrics: new CompatMetrics(),
      onMessage: link.onMessage,
    });
    const sub = new Subscriber({ linger: 0 });
    const req = new Request({ linger: 0, receiveTimeout: 5000 });
    try {
      await pub.start();
      sub.subscribe();
      sub.connect(pub.broadcastEndpoint);
      await pub.subscribed();
      link.start();
      req.connect(pub.replyEndpoint);
      await req.send('web1|sshd|Ban|192.0.2.20');
      expect((await req.receive())[0]!.toString()).toBe('web1|sshd|Ban|192.0.2.20');
      expect((await sub.receive())[0]!.toString()).toBe('web1|sshd|Ban|192.0.2.20');
      const [d] = await decisionsOf(t, 'f2b-zmq/sshd', 1);
      expect(d).toMatchObject({ action: 'ban', target: '192.0.2.20', origin: 'zmqbridge' });
      // An operator's ban reaches the old subscribers; the bridge's own report is not echoed.
      await t.call('POST', '/v1/decisions', { target: '198.51.100.20', duration: '1h', reason: 'operator' });
      expect((await sub.receive())[0]!.toString()).toBe('hub1|rampart|Ban|198.51.100.20');
    } finally {
      req.close();
      sub.close();
      await bridge.close();
      await pub.close();
      await t.close();
    }
  });

  const mqReq = requirements('net2ban bridge', ['tcp:5672', 'cmd:rabbitmqctl']);
  it.skipIf(mqReq.skip)(
    'net2ban server: exec actionban becomes a fleet decision; a fleet decision goes to every client queue',
    async () => {
      const t = await startTestHub();
      const mq = await createVhost('n2bbridge');
      const bridge = await bridgeFor(t, 'n2bbridge', 'net2ban');
      const file = join(dir, 'net2ban.cfg');
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        file,
        `[global]\nserver = 127.0.0.1\nvhost = ${mq.vhost}\nuser = ${mq.user}\npassword = ${mq.password}\nrounds = 100\nsecret = s\nmode = server\nvalid_wtime = 3600\nauthkey = a\nqueue_prefix = q_\n[server]\ninput = in\nkey = sk\n[web1]\nkey = k1\n`,
      );
      const cfg = loadNet2banConfig(file);
      const srv = startServer({
        config: cfg,
        actionsDir: dir,
        log,
        metrics: new CompatMetrics(),
        bridge: { fleet: bridge, direction: 'both', actionFile: 'rampart' },
      });
      const conn = await connect({
        hostname: mq.host,
        vhost: mq.vhost,
        username: mq.user,
        password: mq.password,
      });
      try {
        await srv.link.up();
        await sendToServer(
          cfg,
          execCommand('iptables-multiport', 'actionban', ['ip=192.0.2.30', 'name=ssh']),
        );
        const [d] = await decisionsOf(t, 'net2ban/iptables-multiport', 1);
        expect(d).toMatchObject({ action: 'ban', target: '192.0.2.30', origin: 'n2bbridge' });
        await t.call('POST', '/v1/decisions', { target: '203.0.113.30', duration: '1h' });
        const ch = await conn.createChannel();
        const key = sessionKey('k1', 's', 100);
        const opened: unknown[] = [];
        for (let i = 0; i < 400 && opened.length < 2; i++) {
          const m = await ch.get('q_web1', { noAck: true });
          if (!m) {
            await new Promise((r) => setTimeout(r, 25));
            continue;
          }
          const o = openBody(m.content, key, 'a');
          opened.push(o.ok ? JSON.parse(o.plain.toString()) : o);
        }
        expect(opened).toMatchObject([
          { cmd: 'exec', file: 'iptables-multiport', action: 'actionban', params: { ip: '192.0.2.30' } },
          { cmd: 'exec', file: 'rampart', action: 'actionban', params: { ip: '203.0.113.30' } },
        ]);
      } finally {
        await conn.close();
        await srv.close();
        await t.close();
        await mq.remove();
      }
    },
  );
});
